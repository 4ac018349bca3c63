/**
 * A calibrated band of a per-row statistic (a row's distance from a task's inputs, or a labelled
 * row's loss under a task's mask): the mean and variance of the values the task's own rows gave,
 * with a memory of at most `memory` rows (older rows are down-weighted by merging). A batch is
 * judged by the z-score of its mean, (b − m) / √(v/n), and by its effect, (b − m) / m, so a large
 * but meaningless z on a very steady statistic does not count.
 */
export interface RowBand {
  readonly mean: number;
  readonly variance: number;
  /** Rows behind the band (at most the memory). */
  readonly rows: number;
}

export const EMPTY_ROW_BAND: RowBand = { mean: 0, variance: 0, rows: 0 };

/** Mean and (population) variance of values[from, to). */
export function meanAndVariance(
  values: ArrayLike<number>,
  from = 0,
  to = values.length,
): { mean: number; variance: number } {
  const n = to - from;
  if (n <= 0) return { mean: 0, variance: 0 };
  let sum = 0;
  for (let i = from; i < to; i++) sum += values[i] as number;
  const mean = sum / n;
  let squares = 0;
  for (let i = from; i < to; i++) squares += ((values[i] as number) - mean) ** 2;
  return { mean, variance: squares / n };
}

/** The band after rows with these values (merged as two samples, then capped at `memory` rows). */
export function observeRows(band: RowBand, values: ArrayLike<number>, memory: number): RowBand {
  const n = values.length;
  if (n === 0) return band;
  const batch = meanAndVariance(values);
  const total = band.rows + n;
  const mean = (band.rows * band.mean + n * batch.mean) / total;
  const spread = band.rows * band.variance + n * batch.variance;
  const between = ((band.rows * n) / total) * (band.mean - batch.mean) ** 2;
  return { mean, variance: (spread + between) / total, rows: Math.min(total, memory) };
}

/** How far above the band a batch mean `value` of `n` rows lies: z-score and relative effect. */
export function excess(band: RowBand, value: number, n: number): { z: number; effect: number } {
  const sd = Math.sqrt(band.variance / Math.max(n, 1));
  const diff = value - band.mean;
  const z = sd > 0 ? diff / sd : diff > 0 ? Number.POSITIVE_INFINITY : 0;
  const effect = band.mean > 0 ? diff / band.mean : diff > 0 ? Number.POSITIVE_INFINITY : 0;
  return { z, effect };
}

/** Whether a batch mean lies above the band by both a z-score and an effect that count. */
export function aboveBand(
  band: RowBand,
  value: number,
  n: number,
  limits: { readonly z: number; readonly effect: number },
): boolean {
  const { z, effect } = excess(band, value, n);
  return z > limits.z && effect > limits.effect;
}
