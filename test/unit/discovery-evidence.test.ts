import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  changePoint,
  DEFAULT_EVIDENCE,
  distanceChangePoint,
  fitOf,
  learnRows,
  lossForeignRows,
  lossSettled,
  newProfile,
  shiftExcess,
  shiftRatio,
  type TaskProfile,
} from '../../src/discovery/evidence.ts';
import {
  absorbRows,
  columnPrefixSums,
  emptyInputModel,
  expectedShift,
  logVarianceMean,
  rowDistances,
  SHIFT_CAP,
  shiftStatistic,
} from '../../src/discovery/input-model.ts';
import { InputTransform } from '../../src/discovery/input-transform.ts';
import { gatherRows, likelierElsewhere, REFINE_ROUNDS } from '../../src/discovery/mixed-rows.ts';
import { decodeLearnerSnapshot, encodeLearnerSnapshot } from '../../src/discovery/persisted.ts';
import { INITIAL_STATE } from '../../src/discovery/policy.ts';
import { excess, meanAndVariance, observeRows } from '../../src/discovery/row-band.ts';
import { noUsableAccuracy, unscaledInputs } from '../../src/discovery/warnings.ts';
import { RandomStream } from '../../src/model/network/prng.ts';

const config = DEFAULT_EVIDENCE;

test('the input transform fits on the first records, then never moves', () => {
  const t = new InputTransform({ mode: 'auto', fitRecords: 4, clip: 8 }, 2);
  // Feature 0: 0, 2, 0, 2 (mean 1, std 1); feature 1 constant 2.
  const first = Float32Array.from([0, 2, 2, 2]);
  t.observe(first, 2);
  assert.equal(t.fitted, false);
  t.observe(Float32Array.from([0, 2, 2, 2, 100, 2]), 3);
  assert.equal(t.fitted, true);
  assert.equal(t.recordsSeen, 4, 'rows past the fitting window are ignored');
  const { mean, std } = t.statistics();
  assert.deepEqual(Array.from(mean), [1, 2]);
  assert.deepEqual(Array.from(std), [1, 0]);
  const x = Float32Array.from([3, 2, 1000, 7]);
  t.apply(x, 2);
  // The constant feature is only centred (scale 1); the clip bounds the rest.
  assert.deepEqual(Array.from(x), [2, 0, 8, 5]);
  const restored = new InputTransform({ mode: 'auto', fitRecords: 4, clip: 8 }, 2, t.state() ?? undefined);
  assert.deepEqual(restored.state(), t.state());
  assert.deepEqual(Array.from(restored.scales), Array.from(t.scales));
});

test('given standardisation needs one mean and std per feature', () => {
  assert.throws(
    () => new InputTransform({ mode: 'given', mean: [0], std: [1], clip: 8 }, 2),
    (e: Error & { code?: string }) => e.code === 'E_CONFIG',
  );
  const off = new InputTransform({ mode: 'off' }, 2);
  const x = Float32Array.from([5, -7]);
  off.apply(x, 1);
  assert.deepEqual(Array.from(x), [5, -7]);
  assert.equal(off.state(), null);
});

test('row bands merge batches as two samples and cap their memory', () => {
  assert.deepEqual(meanAndVariance([1, 2, 3, 4]), { mean: 2.5, variance: 1.25 });
  let band = observeRows({ mean: 0, variance: 0, rows: 0 }, [1, 3], 3);
  assert.deepEqual(band, { mean: 2, variance: 1, rows: 2 });
  band = observeRows(band, [5, 7], 3);
  // Merged: mean 4, variance 5; the memory caps the rows behind it at 3.
  assert.deepEqual(band, { mean: 4, variance: 5, rows: 3 });
  assert.deepEqual(excess(band, 9, 5), { z: 5, effect: 1.25 });
});

test('the shift statistic is about 1 + n/N on the task itself and grows with a moved mean', () => {
  const d = 16;
  const rng = new RandomStream(7, 'stream', 0);
  const draw = (rows: number, shift: number) =>
    Float32Array.from({ length: rows * d }, () => (rng.nextFloat() - 0.5) * Math.sqrt(12) + shift);
  const scale = new Float32Array(d).fill(1);
  let model = emptyInputModel(d);
  model = absorbRows(model, draw(512, 0), 512, 4096);
  assert.equal(model.rows, 512);
  const same = draw(64, 0);
  const moved = draw(64, 1);
  const ratio = (x: Float32Array) =>
    shiftStatistic(model, columnPrefixSums(x, 64, d), 0, 64, scale) / expectedShift(model, 64);
  assert.equal(expectedShift(model, 64), 1.125);
  const stationary = ratio(same);
  assert.ok(stationary > 0.4 && stationary < 1.8, `stationary ratio ${stationary}`);
  // A shift of one standard deviation: z² = 64 per feature, capped.
  assert.ok(ratio(moved) > SHIFT_CAP / 1.2, `moved ratio ${ratio(moved)}`);
});

test('the input model remembers at most `memory` rows and keeps float32 state', () => {
  const d = 2;
  const x = Float32Array.from([0, 10, 2, 10, 4, 10, 6, 10]);
  const model = absorbRows(emptyInputModel(d), x, 4, 2);
  assert.equal(model.rows, 2);
  assert.deepEqual(Array.from(model.mean), [3, 10]);
  // Σ(x − 3)² = 20 over 4 rows, scaled to the memory of 2 rows: 10.
  assert.deepEqual(Array.from(model.m2), [10, 0]);
  assert.ok(model.mean instanceof Float32Array && model.m2 instanceof Float32Array);
});

/** A profile whose input model has seen `rows` rows of N(0, 1)-like features and calibrated bands. */
function calibrated(
  d: number,
  seed: number,
): { profile: TaskProfile; draw: (rows: number, shift: number) => Float32Array } {
  const rng = new RandomStream(seed, 'stream', 1);
  const draw = (rows: number, shift: number) =>
    Float32Array.from({ length: rows * d }, () => (rng.nextFloat() - 0.5) * Math.sqrt(12) + shift);
  const scale = new Float32Array(d).fill(1);
  let profile = newProfile(d);
  for (let b = 0; b < 12; b++) {
    const x = draw(128, 0);
    const prefix = columnPrefixSums(x, 128, d);
    const shift = shiftRatio(profile, { prefix, scale }, 0, 128);
    const losses = Array.from({ length: 128 }, (_, i) => 0.5 + 0.1 * Math.sin(i + b));
    const distances = rowDistances(profile.input, x, 128, scale);
    profile = learnRows(
      profile,
      { x, count: 128 },
      { shift, distances, losses, correct: losses.map(() => 1) },
      config,
    );
  }
  return { profile, draw };
}

test('a calibrated task fits its own batches and not a shifted one', () => {
  const d = 32;
  const { profile, draw } = calibrated(d, 3);
  assert.equal(profile.shiftBand.observations, 11, 'the first batch calibrates nothing');
  assert.equal(profile.batches, 12);
  assert.equal(lossSettled(profile, config), true);
  assert.equal(profile.accuracy.mean, 1);
  const scale = new Float32Array(d).fill(1);
  const nan = new Float64Array(128).fill(Number.NaN);
  const same = draw(128, 0);
  const own = fitOf(profile, { prefix: columnPrefixSums(same, 128, d), scale, losses: nan }, 0, 128, config);
  assert.equal(own.fits, true);
  assert.equal(own.lossJudged, false, 'no labels: the loss is not judged');
  const moved = draw(128, 0.5);
  const other = fitOf(
    profile,
    { prefix: columnPrefixSums(moved, 128, d), scale, losses: nan },
    0,
    128,
    config,
  );
  assert.deepEqual([other.fits, other.left], [false, 'input']);
  // A label-only change: inputs as before, losses far above the band.
  const high = new Float64Array(128).fill(3);
  const relabelled = fitOf(
    profile,
    { prefix: columnPrefixSums(same, 128, d), scale, losses: high },
    0,
    128,
    config,
  );
  assert.deepEqual([relabelled.fits, relabelled.left, relabelled.lossJudged], [false, 'loss', true]);
});

test('the change point is where the shifted rows start, or 0 when the whole batch moved', () => {
  const d = 32;
  const { profile, draw } = calibrated(d, 5);
  const scale = new Float32Array(d).fill(1);
  const x = new Float32Array(128 * d);
  x.set(draw(80, 0), 0);
  x.set(draw(48, 1), 80 * d);
  const nan = new Float64Array(128).fill(Number.NaN);
  const evidence = { prefix: columnPrefixSums(x, 128, d), scale, losses: nan, raw: x };
  assert.equal(changePoint(profile, evidence, 128, 'input', 8), 80);
  const all = draw(128, 1);
  assert.equal(
    changePoint(profile, { ...evidence, prefix: columnPrefixSums(all, 128, d), raw: all }, 128, 'input', 8),
    0,
  );
  // Loss: rows 100.. lose far more than the band.
  const losses = Float64Array.from({ length: 128 }, (_, i) => (i >= 100 ? 4 : 0.5));
  const plain = draw(128, 0);
  assert.equal(
    changePoint(
      profile,
      { ...evidence, prefix: columnPrefixSums(plain, 128, d), raw: plain, losses },
      128,
      'loss',
      8,
    ),
    100,
  );
});

test('an uncalibrated band judges the shift ratio against the stated threshold', () => {
  const young = { ...newProfile(4), input: { ...emptyInputModel(4), rows: 128 } };
  assert.deepEqual(shiftExcess(young, config.uncalibratedShift + 0.01, config).left, true);
  assert.deepEqual(shiftExcess(young, config.uncalibratedShift - 0.01, config).left, false);
  assert.deepEqual(shiftExcess(newProfile(4), 100, config), { z: 0, left: false });
});

test('the learner snapshot round-trips through JSON and refuses a wrong width', () => {
  const { profile } = calibrated(8, 9);
  const snapshot = {
    streams: { 'file/0': { ...INITIAL_STATE, masks: 1, current: 0 } },
    profiles: [profile],
    inputTransform: null,
    replayOrder: [0],
    learnedBatches: 12,
  };
  const json = JSON.parse(JSON.stringify(encodeLearnerSnapshot(snapshot)));
  const decoded = decodeLearnerSnapshot(json, 8, 1);
  assert.deepEqual(decoded, snapshot);
  assert.throws(
    () => decodeLearnerSnapshot(json, 9, 1),
    (e: Error & { code?: string }) => e.code === 'E_STORE_CORRUPT',
  );
  assert.throws(
    () => decodeLearnerSnapshot(json, 8, 2),
    (e: Error & { code?: string }) => e.code === 'E_STORE_CORRUPT',
  );
  assert.throws(
    () => decodeLearnerSnapshot({ ...json, replayOrder: [0, 0] }, 8, 1),
    (e: Error & { code?: string }) => e.code === 'E_STORE_CORRUPT' && /twice/.test(e.message),
  );
  assert.throws(
    () => decodeLearnerSnapshot({ ...json, replayOrder: [1] }, 8, 1),
    (e: Error & { code?: string }) => e.code === 'E_STORE_CORRUPT' && /of 1 tasks/.test(e.message),
  );
  assert.throws(
    () => decodeLearnerSnapshot({ streams: { a: { masks: -1 } } }, 8, 1),
    (e: Error & { code?: string }) => e.code === 'E_STORE_CORRUPT',
  );
});

test('unscaled inputs are named only for large magnitudes, offsets or mixed scales', () => {
  const f64 = (values: number[]) => Float64Array.from(values);
  assert.equal(unscaledInputs(f64([0.1, -0.2, 0]), f64([1, 0.8, 0])), null, 'standardised (one constant)');
  assert.equal(unscaledInputs(f64([0.13, 0.1]), f64([0.3, 0.25])), null, '[0, 1] pixels');
  assert.equal(unscaledInputs(f64([0, 0]), f64([0, 0])), null, 'nothing measured');
  const large = unscaledInputs(f64([250, 0]), f64([40, 1]));
  assert.equal(large?.code, 'inputs_unscaled');
  assert.match(large?.message ?? '', /a feature reaches 250/);
  assert.match(unscaledInputs(f64([5, 6, 4]), f64([1, 1, 1]))?.message ?? '', /sits 5 std from 0/);
  assert.match(unscaledInputs(f64([0, 0, 0]), f64([0.01, 0.01, 2]))?.message ?? '', /differ by 200x/);
});

test('no usable accuracy: judged tasks all below min(0.5, 2 / classes)', () => {
  const task = (accuracy: number, labelled = 512) => ({ accuracy, labelled });
  assert.equal(noUsableAccuracy([], 10), null);
  assert.equal(noUsableAccuracy([task(0.1, 255)], 10), null, 'too few labelled rows to judge');
  assert.equal(noUsableAccuracy([task(0.19), task(0.2)], 10), null, 'one task reaches 2/10');
  const warning = noUsableAccuracy([task(0.19), task(0.1)], 10);
  assert.equal(warning?.code, 'no_usable_accuracy');
  assert.match(warning?.message ?? '', /best prequential accuracy is 0.19 \(usable: 0.2 with 10 classes\)/);
  assert.equal(noUsableAccuracy([task(0.49)], 3)?.code, 'no_usable_accuracy', '3 classes: 0.5');
});

test('a batch with the task means but three times its spread leaves through the row distances', () => {
  const d = 32;
  const { profile } = calibrated(d, 13);
  const rng = new RandomStream(13, 'stream', 2);
  const wide = Float32Array.from({ length: 128 * d }, () => 3 * (rng.nextFloat() - 0.5) * Math.sqrt(12));
  const scale = new Float32Array(d).fill(1);
  const nan = new Float64Array(128).fill(Number.NaN);
  const prefix = columnPrefixSums(wide, 128, d);
  const withoutRows = fitOf(profile, { prefix, scale, losses: nan }, 0, 128, config);
  const distances = rowDistances(profile.input, wide, 128, scale);
  const withRows = fitOf(profile, { prefix, scale, losses: nan, distances }, 0, 128, config);
  assert.deepEqual([withRows.fits, withRows.left], [false, 'input']);
  assert.ok(withRows.score > withoutRows.score, `${withRows.score} > ${withoutRows.score}`);
});

test('the mean log variance is that of the shrunk, floored variances', () => {
  const model = absorbRows(emptyInputModel(2), Float32Array.from([0, 0, 2, 4]), 2, 4096);
  const scale = Float32Array.from([1, 0.5]);
  // m2 = [2, 8]; global = [1, 4]; own = (m2 + 32·global) / 34; plus 0.01·global.
  const v0 = (2 + 32) / 34 + 0.01;
  const v1 = (8 + 32 * 4) / 34 + 0.04;
  assert.equal(logVarianceMean(model, scale), (Math.log(v0) + Math.log(v1)) / 2);
});

test('the distance change point finds where rows start to lie far from the task', () => {
  const d = 32;
  const { profile, draw } = calibrated(d, 17);
  const scale = new Float32Array(d).fill(1);
  const x = new Float32Array(128 * d);
  x.set(draw(80, 0), 0);
  const rng = new RandomStream(17, 'stream', 3);
  for (let i = 80 * d; i < 128 * d; i++) x[i] = 3 * (rng.nextFloat() - 0.5) * Math.sqrt(12);
  const distances = rowDistances(profile.input, x, 128, scale);
  assert.equal(distanceChangePoint(profile, distances, 128, config), 80);
  assert.equal(distanceChangePoint(newProfile(d), distances, 128, config), null, 'no row band yet');
});

test('rows far above the loss band are foreign by their loss, once the band has settled', () => {
  const { profile } = calibrated(8, 3);
  assert.equal(lossSettled(profile, config), true);
  const band = profile.lossBand;
  const limit = Math.max(
    band.mean + config.rowZ * Math.sqrt(band.variance),
    band.mean * (1 + config.rowEffect),
  );
  const losses = [band.mean, limit - 0.01, limit + 0.01, 3, Number.NaN];
  assert.deepEqual(lossForeignRows(profile, losses, config), [false, false, true, true, false]);
  assert.deepEqual(lossForeignRows(newProfile(8), losses, config), [false, false, false, false, false]);
});

test('a mixed batch is divided between the task and a model of its foreign rows', () => {
  const d = 32;
  const { profile, draw } = calibrated(d, 11);
  const scale = new Float32Array(d).fill(1);
  // Every third row from inputs shifted by one standard unit, the rest the task's own.
  const truth = Array.from({ length: 128 }, (_, r) => r % 3 === 0);
  const raw = new Float32Array(128 * d);
  truth.forEach((shifted, r) => {
    raw.set(draw(1, shifted ? 1 : 0), r * d);
  });
  const distances = rowDistances(profile.input, raw, 128, scale);
  const mine = { distances, logVariance: logVarianceMean(profile.input, scale) };
  const batch = { raw, rows: 128, scale };
  const options = { minRows: 8, memory: 4096, rounds: REFINE_ROUNDS };
  // Seeded with the first ten shifted rows only, the division finds the others.
  const seed = truth.map((shifted, r) => shifted && r < 30);
  assert.deepEqual(likelierElsewhere(batch, mine, seed, options), truth);
  // Too few seed rows to fit a model on: the seed as it was.
  const few = truth.map((shifted, r) => shifted && r < 9);
  assert.deepEqual(likelierElsewhere(batch, mine, few, options), few);
  assert.deepEqual(Array.from(gatherRows(Float32Array.from([1, 2, 3, 4, 5, 6]), 2, [2, 0])), [5, 6, 1, 2]);
});
