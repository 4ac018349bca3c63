/**
 * The no-task-identity rule (spec §5.2), as pure functions over numbers: no tensors, no I/O.
 *
 * Paper: ν = softmax(−∂H/∂α) over k′ = max(k, 5) masks (untrained pads fill up to 5); allocate a new
 * mask when k′ · max ν < 1 + ε, ε = 2⁻³; otherwise route to argmax ν and keep training it; at most
 * `budget` masks. Deviations for real streams (docs/discovery.md): a check may run on every batch; a
 * fresh mask is not challenged during a warm-up of W labelled batches; a pad that wins the argmax
 * means "no learned mask fits" and allocates; a fast path keeps the current task while its mean
 * entropy stays inside a calibrated band.
 */
export interface PolicyConfig {
  /** ε of the allocation threshold k′·max ν < 1 + ε. Paper: 2⁻³. */
  readonly epsilon: number;
  /** k′ = max(k, minCandidates): untrained pads added while fewer masks exist. Paper: 5. */
  readonly minCandidates: number;
  /** Most masks ever allocated. Paper: 2500. */
  readonly budget: number;
  /** Labelled batches a new mask trains on before the rule may move away from it. */
  readonly warmupBatches: number;
  /** Run the full check every this many batches (1 = every batch; the paper checks every 100). */
  readonly checkEvery: number;
  readonly fastPath: {
    readonly enabled: boolean;
    /** Half-width of the band in standard deviations of the current task's batch entropy. */
    readonly zScore: number;
    /** Observations of the current task needed before the band is trusted. */
    readonly minObservations: number;
    /** Weight of a new observation in the exponentially weighted mean and variance. */
    readonly smoothing: number;
    /** Floor of the band's standard deviation (nats), so a very steady task does not get a zero-width band. */
    readonly minStd: number;
  };
}

export const PAPER_POLICY: PolicyConfig = {
  epsilon: 0.125,
  minCandidates: 5,
  budget: 2500,
  warmupBatches: 20,
  checkEvery: 1,
  fastPath: { enabled: true, zScore: 3, minObservations: 8, smoothing: 0.1, minStd: 0.02 },
};

/** Exponentially weighted mean and variance of the current task's batch entropy. */
export interface EntropyBand {
  readonly mean: number;
  readonly variance: number;
  readonly observations: number;
}

export const EMPTY_BAND: EntropyBand = { mean: 0, variance: 0, observations: 0 };

export function observeEntropy(band: EntropyBand, entropy: number, smoothing: number): EntropyBand {
  if (band.observations === 0) return { mean: entropy, variance: 0, observations: 1 };
  const delta = entropy - band.mean;
  const mean = band.mean + smoothing * delta;
  const variance = (1 - smoothing) * (band.variance + smoothing * delta * delta);
  return { mean, variance, observations: band.observations + 1 };
}

export function insideBand(band: EntropyBand, entropy: number, config: PolicyConfig['fastPath']): boolean {
  if (!config.enabled || band.observations < config.minObservations) return false;
  const std = Math.max(Math.sqrt(band.variance), config.minStd);
  return Math.abs(entropy - band.mean) <= config.zScore * std;
}

/** State of the rule between batches of one stream (one source partition). */
export interface PolicyState {
  /** Masks allocated so far, by all streams. */
  readonly masks: number;
  /** The task the stream is on, or null before the first batch. */
  readonly current: number | null;
  /** Labelled batches the current task has trained on since it was allocated. */
  readonly sinceAllocation: number;
  /** Batches since the last full check. */
  readonly sinceCheck: number;
  readonly band: EntropyBand;
  readonly budgetReported: boolean;
}

export const INITIAL_STATE: PolicyState = {
  masks: 0,
  current: null,
  sinceAllocation: 0,
  sinceCheck: 0,
  band: EMPTY_BAND,
  budgetReported: false,
};

/** What the daemon must compute before deciding. */
export type Precheck =
  | { readonly kind: 'allocate'; readonly reason: 'first' }
  | { readonly kind: 'keep'; readonly reason: 'warmup' | 'schedule' }
  /** Compute the current task's batch entropy and ask `afterEntropy`. */
  | { readonly kind: 'entropy' }
  /** A stream with no current task yet, while masks exist: run the full check. */
  | { readonly kind: 'check' };

/**
 * The first question for a batch. `state` is the batch's own stream (a partition): each stream has
 * its current task, warm-up and entropy band, while `masks` counts the masks shared by all.
 */
export function precheck(state: PolicyState, config: PolicyConfig): Precheck {
  if (state.masks === 0) return { kind: 'allocate', reason: 'first' };
  if (state.current === null) return { kind: 'check' };
  if (state.sinceAllocation < config.warmupBatches) return { kind: 'keep', reason: 'warmup' };
  if (state.sinceCheck + 1 < config.checkEvery) return { kind: 'keep', reason: 'schedule' };
  return { kind: 'entropy' };
}

/** Whether the current task's batch entropy allows the fast path, or the full check must run. */
export function afterEntropy(state: PolicyState, entropy: number, config: PolicyConfig): 'keep' | 'check' {
  return insideBand(state.band, entropy, config.fastPath) ? 'keep' : 'check';
}

export type Decision =
  | {
      readonly kind: 'route';
      readonly task: number;
      readonly confidence: number;
      readonly reason: RouteReason;
    }
  | { readonly kind: 'allocate'; readonly confidence: number; readonly reason: AllocateReason };

export type RouteReason =
  | 'confident'
  | 'budget'
  | 'warmup'
  | 'schedule'
  | 'fast_path'
  | 'unlabelled'
  /** Evidence rule: the batch fits the current task's bands. */
  | 'fits'
  /** Evidence rule: the batch fits another task's bands. */
  | 'switched'
  /** Evidence rule: a stream's first batch fits a task learned from another stream. */
  | 'first_seen'
  /** Evidence rule: the batch was split; its tail fits another task. */
  | 'split';
export type AllocateReason = 'first' | 'uncertain' | 'pad_won';

/** Number of untrained pads the check needs: k′ − k. */
export function padsNeeded(masks: number, config: PolicyConfig): number {
  return Math.max(0, config.minCandidates - masks);
}

/**
 * The paper's rule from ∂H/∂α over the learned masks (`masks`) and the pads (`pads`).
 * confidence = max ν, in [1/k′, 1]. A new mask is allocated only for a batch that carries labels
 * to train it; an uncertain unlabelled batch goes to the best learned mask.
 */
export function decideFromGradient(
  state: PolicyState,
  gradient: { readonly masks: ArrayLike<number>; readonly pads: ArrayLike<number> },
  config: PolicyConfig,
  labelled = true,
): Decision {
  const all = [...Array.from(gradient.masks), ...Array.from(gradient.pads)];
  const nu = softmaxOfNegated(all);
  let best = 0;
  for (let i = 1; i < nu.length; i++) if ((nu[i] as number) > (nu[best] as number)) best = i;
  const confidence = nu[best] as number;
  const uncertain = nu.length * confidence < 1 + config.epsilon;
  const padWon = best >= gradient.masks.length;
  if (state.masks >= config.budget) {
    return { kind: 'route', task: bestLearned(nu, gradient.masks.length), confidence, reason: 'budget' };
  }
  if ((uncertain || padWon) && !labelled && gradient.masks.length > 0) {
    return { kind: 'route', task: bestLearned(nu, gradient.masks.length), confidence, reason: 'unlabelled' };
  }
  if (uncertain) return { kind: 'allocate', confidence, reason: 'uncertain' };
  if (padWon) return { kind: 'allocate', confidence, reason: 'pad_won' };
  return { kind: 'route', task: best, confidence, reason: 'confident' };
}

function bestLearned(nu: readonly number[], learned: number): number {
  let best = 0;
  for (let i = 1; i < learned; i++) if ((nu[i] as number) > (nu[best] as number)) best = i;
  return best;
}

/** softmax(−g), computed stably. */
export function softmaxOfNegated(g: readonly number[]): number[] {
  let min = Number.POSITIVE_INFINITY;
  for (const v of g) min = Math.min(min, v);
  const e = g.map((v) => Math.exp(min - v));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

/** The state after a batch was handled with `decision`, `labelled` telling whether it trained. */
export function advance(
  state: PolicyState,
  decision: Decision,
  outcome: { readonly labelled: boolean; readonly entropy: number; readonly checked: boolean },
  config: PolicyConfig,
): PolicyState {
  if (decision.kind === 'allocate') {
    return {
      masks: state.masks + 1,
      current: state.masks,
      sinceAllocation: outcome.labelled ? 1 : 0,
      sinceCheck: 0,
      band: EMPTY_BAND,
      budgetReported: state.budgetReported,
    };
  }
  const switched = decision.task !== state.current;
  const inWarmup = !switched && state.sinceAllocation < config.warmupBatches;
  const sinceAllocation = switched
    ? config.warmupBatches
    : state.sinceAllocation + (outcome.labelled ? 1 : 0);
  // The band is calibrated only on batches of a task past its warm-up; it restarts on a switch and
  // is updated only when the batch was confirmed (full check or fast path), never during warm-up.
  const base = switched || inWarmup ? EMPTY_BAND : state.band;
  const band = inWarmup ? EMPTY_BAND : observeEntropy(base, outcome.entropy, config.fastPath.smoothing);
  return {
    masks: state.masks,
    current: decision.task,
    sinceAllocation,
    sinceCheck: outcome.checked ? 0 : state.sinceCheck + 1,
    band,
    budgetReported: state.budgetReported || decision.reason === 'budget',
  };
}
