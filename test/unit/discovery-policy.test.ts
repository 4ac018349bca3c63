import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  advance,
  afterEntropy,
  decideFromGradient,
  EMPTY_BAND,
  INITIAL_STATE,
  insideBand,
  observeEntropy,
  PAPER_POLICY,
  type PolicyState,
  padsNeeded,
  precheck,
  softmaxOfNegated,
} from '../../src/discovery/policy.ts';

const config = PAPER_POLICY;
const onTask = (current: number, masks: number, extra: Partial<PolicyState> = {}): PolicyState => ({
  ...INITIAL_STATE,
  masks,
  current,
  sinceAllocation: config.warmupBatches,
  ...extra,
});

test('the paper constants are the defaults', () => {
  assert.equal(config.epsilon, 2 ** -3);
  assert.equal(config.minCandidates, 5);
  assert.equal(config.budget, 2500);
});

test('the first batch allocates; a fresh mask is kept through its warm-up', () => {
  assert.deepEqual(precheck(INITIAL_STATE, config), { kind: 'allocate', reason: 'first' });
  const fresh = advance(
    INITIAL_STATE,
    { kind: 'allocate', confidence: 0, reason: 'first' },
    { labelled: true, entropy: 4, checked: false },
    config,
  );
  assert.equal(fresh.masks, 1);
  assert.equal(fresh.current, 0);
  assert.equal(fresh.sinceAllocation, 1);
  let state = fresh;
  for (let i = 1; i < config.warmupBatches; i++) {
    assert.deepEqual(precheck(state, config), { kind: 'keep', reason: 'warmup' });
    state = advance(
      state,
      { kind: 'route', task: 0, confidence: 1, reason: 'warmup' },
      { labelled: true, entropy: 3, checked: false },
      config,
    );
  }
  assert.equal(state.sinceAllocation, config.warmupBatches);
  assert.deepEqual(precheck(state, config), { kind: 'entropy' });
  // Unlabelled batches do not count towards the warm-up.
  const unlabelled = advance(
    fresh,
    { kind: 'route', task: 0, confidence: 1, reason: 'warmup' },
    { labelled: false, entropy: 3, checked: false },
    config,
  );
  assert.equal(unlabelled.sinceAllocation, 1);
});

test('a new stream (partition) checks the shared masks before it would allocate', () => {
  const fresh = { ...INITIAL_STATE, masks: 3 };
  assert.deepEqual(precheck(fresh, config), { kind: 'check' });
  const routed = advance(
    fresh,
    { kind: 'route', task: 1, confidence: 0.8, reason: 'confident' },
    { labelled: true, entropy: 1.5, checked: true },
    config,
  );
  assert.equal(routed.current, 1);
  assert.equal(routed.sinceAllocation, config.warmupBatches, 'an existing mask needs no warm-up');
  assert.deepEqual(precheck(routed, config), { kind: 'entropy' });
});

test('padding: k′ = max(k, 5)', () => {
  assert.deepEqual(
    [0, 1, 2, 4, 5, 9].map((k) => padsNeeded(k, config)),
    [5, 4, 3, 1, 0, 0],
  );
});

test('softmax of the negated gradient is exact and stable', () => {
  const nu = softmaxOfNegated([0, Math.log(2)]);
  assert.ok(Math.abs((nu[0] as number) - 2 / 3) < 1e-15);
  assert.ok(Math.abs((nu[1] as number) - 1 / 3) < 1e-15);
  const big = softmaxOfNegated([1e6, 1e6 + 1]);
  assert.ok(Number.isFinite(big[0]) && Math.abs((big[0] as number) - 1 / (1 + Math.exp(-1))) < 1e-12);
});

test('allocate exactly when k′·max ν < 1 + ε', () => {
  const state = onTask(0, 5);
  // Five masks; the leader's advantage d in −∂H/∂α decides. k′·max ν = 5e^d / (4 + e^d).
  // Threshold: 5e^d/(4+e^d) = 1.125 ⇔ e^d = 4.5/3.875.
  const dStar = Math.log(4.5 / 3.875);
  const grad = (d: number) => ({ masks: [-d, 0, 0, 0, 0], pads: [] });
  const below = decideFromGradient(state, grad(dStar - 1e-6), config);
  const above = decideFromGradient(state, grad(dStar + 1e-6), config);
  assert.equal(below.kind, 'allocate');
  assert.equal(below.reason, 'uncertain');
  assert.deepEqual({ kind: above.kind, reason: above.reason }, { kind: 'route', reason: 'confident' });
  assert.equal(above.kind === 'route' ? above.task : -1, 0);
  assert.ok(Math.abs(above.confidence - Math.exp(dStar) / (4 + Math.exp(dStar))) < 1e-6);
});

test('a winning pad means no learned mask fits: allocate', () => {
  const state = onTask(0, 2);
  const decision = decideFromGradient(state, { masks: [0, 0], pads: [0, -5, 0] }, config);
  assert.deepEqual({ kind: decision.kind, reason: decision.reason }, { kind: 'allocate', reason: 'pad_won' });
  const learned = decideFromGradient(state, { masks: [0, -5], pads: [0, 0, 0] }, config);
  assert.equal(learned.kind === 'route' ? learned.task : -1, 1);
});

test('budget reached: route to the best learned mask instead of allocating', () => {
  const state = onTask(0, 3);
  const small = { ...config, budget: 3 };
  const decision = decideFromGradient(state, { masks: [0, 0, 0], pads: [0, -1] }, small);
  assert.deepEqual(decision, { kind: 'route', task: 0, confidence: decision.confidence, reason: 'budget' });
  const next = advance(state, decision, { labelled: true, entropy: 1, checked: true }, small);
  assert.equal(next.budgetReported, true);
});

test('an uncertain unlabelled batch goes to the best learned mask, never to a new one', () => {
  const state = onTask(0, 6);
  const decision = decideFromGradient(state, { masks: [0, 0, -0.01, 0, 0, 0], pads: [] }, config, false);
  assert.deepEqual({ kind: decision.kind, reason: decision.reason }, { kind: 'route', reason: 'unlabelled' });
  assert.equal(decision.kind === 'route' ? decision.task : -1, 2);
});

test('entropy band: exponentially weighted, trusted after enough observations', () => {
  let band = EMPTY_BAND;
  for (const h of [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]) band = observeEntropy(band, h, 0.1);
  assert.equal(band.observations, 7);
  assert.equal(insideBand(band, 1.0, config.fastPath), false, 'not trusted before minObservations');
  band = observeEntropy(band, 1.0, 0.1);
  assert.equal(insideBand(band, 1.0, config.fastPath), true);
  // Zero variance: the floor minStd·z = 0.06 sets the band.
  assert.equal(insideBand(band, 1.05, config.fastPath), true);
  assert.equal(insideBand(band, 1.07, config.fastPath), false);
  const moved = observeEntropy({ mean: 1, variance: 0, observations: 3 }, 2, 0.1);
  assert.ok(Math.abs(moved.mean - 1.1) < 1e-12);
  assert.ok(Math.abs(moved.variance - 0.9 * 0.1) < 1e-12);
  const state = onTask(0, 3, { band });
  assert.equal(afterEntropy(state, 1.0, config), 'keep');
  assert.equal(afterEntropy(state, 2.5, config), 'check');
  assert.equal(
    afterEntropy(state, 1.0, { ...config, fastPath: { ...config.fastPath, enabled: false } }),
    'check',
  );
});

test('switching task resets the band; the warm-up does not calibrate it', () => {
  const calibrated = onTask(0, 3, { band: { mean: 1, variance: 0.01, observations: 20 } });
  const switched = advance(
    calibrated,
    { kind: 'route', task: 2, confidence: 0.9, reason: 'confident' },
    { labelled: true, entropy: 2, checked: true },
    config,
  );
  assert.equal(switched.current, 2);
  assert.equal(switched.band.observations, 1);
  assert.equal(switched.band.mean, 2);
  const warm = advance(
    { ...calibrated, sinceAllocation: 3 },
    { kind: 'route', task: 0, confidence: 1, reason: 'warmup' },
    { labelled: true, entropy: 2, checked: false },
    config,
  );
  assert.equal(warm.band.observations, 0);
});

test('checkEvery schedules the full check', () => {
  const sparse = { ...config, checkEvery: 3 };
  let state = onTask(1, 4);
  const seen: string[] = [];
  for (let i = 0; i < 6; i++) {
    const pre = precheck(state, sparse);
    seen.push(pre.kind);
    const checked = pre.kind === 'entropy';
    state = advance(
      state,
      { kind: 'route', task: 1, confidence: 1, reason: checked ? 'confident' : 'schedule' },
      { labelled: true, entropy: 1, checked },
      sparse,
    );
  }
  assert.deepEqual(seen, ['keep', 'keep', 'entropy', 'keep', 'keep', 'entropy']);
});
