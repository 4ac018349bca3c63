/** Approximate dot products and their bound (MaskBank.screen). */
export interface ScreenedDots {
  /** A_i for every mask, in index order. */
  readonly values: Float64Array;
  /** δ: |A_i − g_i| ≤ δ for every mask i and any float64 evaluation g_i of the exact sum. */
  readonly bound: number;
}

/** The exact argmin found from screened values (certifiedArgMin). */
export interface CertifiedArgMin {
  /** The index of the smallest exact value; the first on ties. */
  readonly index: number;
  /**
   * Every value: exact (as `exact` computed it) for the candidates, the screen's approximation,
   * within its bound, for the rest.
   */
  readonly values: Float64Array;
  /** How many values were computed exactly. */
  readonly rescored: number;
}

/**
 * The argmin over exact values g_i known only as screened approximations A_i with |A_i − g_i| ≤ δ
 * (ADR 0007). With U = min_i (A_i + δ), every mask i with A_i − δ > U has g_i ≥ A_i − δ > U ≥ the
 * smallest g, so only the candidates {i : A_i − δ ≤ U} can hold the minimum; they are computed
 * exactly by `exact` and the smallest, the first on ties, is returned. It is the index the exact
 * values of every mask would give, and it is also the argmin of the returned values: every value
 * left approximate is above U.
 */
export function certifiedArgMin(
  screened: ScreenedDots,
  exact: (indices: readonly number[]) => Float64Array,
): CertifiedArgMin {
  const { values, bound } = screened;
  if (values.length === 0) throw new RangeError('certifiedArgMin needs at least one value');
  let upper = Number.POSITIVE_INFINITY;
  for (let i = 0; i < values.length; i++) upper = Math.min(upper, (values[i] as number) + bound);
  const candidates: number[] = [];
  for (let i = 0; i < values.length; i++) if ((values[i] as number) - bound <= upper) candidates.push(i);
  const exactValues = exact(candidates);
  let best = 0;
  for (let p = 0; p < candidates.length; p++) {
    values[candidates[p] as number] = exactValues[p] as number;
    if ((exactValues[p] as number) < (exactValues[best] as number)) best = p;
  }
  return { index: candidates[best] as number, values, rescored: candidates.length };
}
