/**
 * The input standardisation the daemon applies before the network sees a record:
 * x' = clamp((x − mean) · scale, ±clip), per feature. `auto` fits mean and standard deviation on
 * the first `fitRecords` records of the stream (running sums in float64, in record order) and then
 * never changes them: refitting per task would hide the very shifts discovery looks for. Until then
 * every micro-batch is transformed with the statistics of all records up to and including it. A
 * feature that was constant in the fitting window keeps scale 1 (it is only centred), so nothing is
 * divided by zero; the clip bounds a feature that was almost constant and then moves.
 *
 * The fitted state is plain JSON (persisted in the registry), so a restart or a replay transforms
 * exactly as before.
 */
import { SupsupError } from '../errors.js';

export type StandardiseConfig =
  | { readonly mode: 'auto'; readonly fitRecords: number; readonly clip: number }
  | { readonly mode: 'off' }
  | {
      readonly mode: 'given';
      readonly mean: readonly number[];
      readonly std: readonly number[];
      readonly clip: number;
    };

const DEFAULT_FIT_RECORDS = 2048;

export const DEFAULT_STANDARDISE: StandardiseConfig = {
  mode: 'auto',
  fitRecords: DEFAULT_FIT_RECORDS,
  clip: 8,
};

/** A standard deviation below this fraction of the feature's magnitude counts as constant. */
const CONSTANT_RELATIVE = 1e-7;

/** The persisted form: running sums while fitting, then the frozen statistics. */
export interface InputTransformState {
  readonly features: number;
  readonly count: number;
  readonly frozen: boolean;
  readonly mean: readonly number[];
  /** Sum of squared deviations from the mean (Welford), per feature. */
  readonly m2: readonly number[];
}

export class InputTransform {
  private readonly config: StandardiseConfig;
  private readonly features: number;
  private count = 0;
  private frozen: boolean;
  private readonly mean: Float64Array;
  private readonly m2: Float64Array;
  /** What apply() uses: float32 copies of the current centre and scale. */
  private readonly centre: Float32Array;
  private readonly scale: Float32Array;

  constructor(config: StandardiseConfig, features: number, state?: InputTransformState) {
    this.config = config;
    this.features = features;
    this.mean = new Float64Array(features);
    this.m2 = new Float64Array(features);
    this.centre = new Float32Array(features);
    this.scale = new Float32Array(features).fill(1);
    this.frozen = config.mode === 'given';
    if (config.mode === 'given') this.setGiven(config);
    if (state !== undefined && config.mode === 'auto') this.restore(state);
  }

  /** Whether the transform is final (always for `off` and `given`). */
  get fitted(): boolean {
    return this.frozen || this.config.mode === 'off';
  }

  get recordsSeen(): number {
    return this.count;
  }

  /**
   * Feeds the rows of a micro-batch (row-major, `rows` × features) to the fit while it is open,
   * record by record, and freezes it once `fitRecords` records were seen. Rows past that are ignored.
   * With `off` the same statistics are gathered (never applied, never persisted) for the
   * unscaled-input warning.
   */
  observe(x: Float32Array, rows: number): void {
    if (this.frozen) return;
    const fitRecords = this.config.mode === 'auto' ? this.config.fitRecords : DEFAULT_FIT_RECORDS;
    const d = this.features;
    const take = Math.min(rows, fitRecords - this.count);
    for (let r = 0; r < take; r++) {
      this.count++;
      const base = r * d;
      for (let j = 0; j < d; j++) {
        const v = x[base + j] as number;
        const delta = v - (this.mean[j] as number);
        this.mean[j] = (this.mean[j] as number) + delta / this.count;
        this.m2[j] = (this.m2[j] as number) + delta * (v - (this.mean[j] as number));
      }
    }
    if (this.count >= fitRecords) this.frozen = true;
    if (this.config.mode === 'auto') this.refresh();
  }

  /** Transforms `rows` rows of x in place. */
  apply(x: Float32Array, rows: number): void {
    if (this.config.mode === 'off') return;
    standardiseRows(x, rows, this.centre, this.scale, this.config.clip);
  }

  /** The per-feature centre apply() subtracts (0 everywhere for `off`). */
  get centres(): Float32Array {
    return this.centre;
  }

  /** The per-feature factor apply() multiplies by (1 everywhere for `off`). */
  get scales(): Float32Array {
    return this.scale;
  }

  /** The persisted state, or null where there is nothing to persist (`off`, `given`). */
  state(): InputTransformState | null {
    if (this.config.mode !== 'auto') return null;
    return {
      features: this.features,
      count: this.count,
      frozen: this.frozen,
      mean: Array.from(this.mean),
      m2: Array.from(this.m2),
    };
  }

  /** Whether inputs are used as they arrive. */
  get off(): boolean {
    return this.config.mode === 'off';
  }

  /** Mean and standard deviation per feature as fitted so far (for the status API and warnings). */
  statistics(): { readonly mean: Float64Array; readonly std: Float64Array } {
    const std = new Float64Array(this.features);
    for (let j = 0; j < this.features; j++) {
      std[j] = this.count > 1 ? Math.sqrt((this.m2[j] as number) / this.count) : 0;
    }
    return { mean: Float64Array.from(this.mean), std };
  }

  private refresh(): void {
    const { mean, std } = this.statistics();
    for (let j = 0; j < this.features; j++) {
      const m = mean[j] as number;
      const s = std[j] as number;
      this.centre[j] = m;
      this.scale[j] = s > CONSTANT_RELATIVE * Math.max(1, Math.abs(m)) ? 1 / s : 1;
    }
  }

  private setGiven(config: Extract<StandardiseConfig, { mode: 'given' }>): void {
    if (config.mean.length !== this.features || config.std.length !== this.features) {
      throw new SupsupError(
        'E_CONFIG',
        `model.input.standardise: mean and std need ${this.features} values each, got ${config.mean.length} and ${config.std.length}`,
      );
    }
    config.mean.forEach((m, j) => {
      const s = config.std[j] as number;
      this.centre[j] = m;
      this.scale[j] = s > 0 ? 1 / s : 1;
    });
  }

  private restore(state: InputTransformState): void {
    if (
      state.features !== this.features ||
      state.mean.length !== this.features ||
      state.m2.length !== this.features
    ) {
      throw new SupsupError(
        'E_STORE_CORRUPT',
        `the stored input transform has ${state.features} features, the model ${this.features}`,
      );
    }
    this.count = state.count;
    this.frozen = state.frozen;
    this.mean.set(state.mean);
    this.m2.set(state.m2);
    if (this.count > 0) this.refresh();
  }
}

/**
 * x' = clamp((x − centre) · scale, ±clip) for `rows` rows of x in place: what InputTransform.apply does, also
 * for a transform read back from an archive (the same arithmetic, so the same bits).
 */
export function standardiseRows(
  x: Float32Array,
  rows: number,
  centre: ArrayLike<number>,
  scale: ArrayLike<number>,
  clip: number,
): void {
  const d = centre.length;
  for (let r = 0; r < rows; r++) {
    const base = r * d;
    for (let j = 0; j < d; j++) {
      const z = ((x[base + j] as number) - (centre[j] as number)) * (scale[j] as number);
      x[base + j] = z > clip ? clip : Math.max(z, -clip);
    }
  }
}
