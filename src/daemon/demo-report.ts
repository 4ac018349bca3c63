/**
 * Scoring of a discovery run against the true task of each record: the contingency table, the
 * adjusted Rand index (Hubert & Arabie 1985), the normalised mutual information, spurious allocations
 * and detection delays. The demo, `supsupd evaluate` and the discovery benchmark share these.
 */
export interface DemoAssignment {
  /** True task per record, in stream order. */
  readonly truth: readonly number[];
  /** Discovered task per record, in stream order. */
  readonly found: readonly number[];
}

export interface DemoReport {
  readonly true_tasks: number;
  readonly discovered_tasks: number;
  readonly adjusted_rand_index: number;
  readonly spurious_allocations: number;
  /** For each segment after the first: records from its start until its dominant task is first assigned. */
  readonly detection_delays: readonly number[];
  /** true task → discovered task → records. */
  readonly contingency: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /** Discovered task that most records of each true task went to. */
  readonly dominant: Readonly<Record<string, number>>;
}

const choose2 = (n: number): number => (n * (n - 1)) / 2;

export function adjustedRandIndex(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new RangeError('label lists differ in length');
  const n = a.length;
  const cells = new Map<string, number>();
  const rows = new Map<number, number>();
  const cols = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    cells.set(`${x},${y}`, (cells.get(`${x},${y}`) ?? 0) + 1);
    rows.set(x, (rows.get(x) ?? 0) + 1);
    cols.set(y, (cols.get(y) ?? 0) + 1);
  }
  let index = 0;
  for (const c of cells.values()) index += choose2(c);
  let sumRows = 0;
  for (const r of rows.values()) sumRows += choose2(r);
  let sumCols = 0;
  for (const c of cols.values()) sumCols += choose2(c);
  const expected = (sumRows * sumCols) / choose2(n);
  const max = (sumRows + sumCols) / 2;
  return max === expected ? 1 : (index - expected) / (max - expected);
}

export function scoreDiscovery(assignment: DemoAssignment, segmentStarts: readonly number[]): DemoReport {
  const { truth, found } = assignment;
  const contingency: Record<string, Record<string, number>> = {};
  truth.forEach((t, i) => {
    const row = contingency[t] ?? {};
    const f = found[i] as number;
    row[f] = (row[f] ?? 0) + 1;
    contingency[t] = row;
  });
  const dominant: Record<string, number> = {};
  for (const [t, row] of Object.entries(contingency)) {
    dominant[t] = Number(
      Object.entries(row).sort((x, y) => y[1] - x[1] || Number(x[0]) - Number(y[0]))[0]?.[0],
    );
  }
  const trueTasks = new Set(truth).size;
  const discovered = new Set(found).size;
  const delays = segmentStarts.slice(1).map((start, s) => {
    const end = segmentStarts[s + 2] ?? truth.length;
    return firstAssignedAfter(found, start, end, dominant[truth[start] as number]) - start;
  });
  return {
    true_tasks: trueTasks,
    discovered_tasks: discovered,
    adjusted_rand_index: adjustedRandIndex(truth, found),
    spurious_allocations: Math.max(0, discovered - trueTasks),
    detection_delays: delays,
    contingency,
    dominant,
  };
}

/** The first index in [start, end) whose record went to `target`, or `end` when none did. */
export function firstAssignedAfter(
  found: readonly number[],
  start: number,
  end: number,
  target: number | undefined,
): number {
  let i = start;
  while (i < end && found[i] !== target) i++;
  return i;
}

/** NMI with the arithmetic mean of the two entropies (scikit-learn's default). */
export function normalisedMutualInformation(a: readonly number[], b: readonly number[]): number {
  const n = a.length;
  const joint = new Map<string, number>();
  const pa = new Map<number, number>();
  const pb = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    joint.set(`${x},${y}`, (joint.get(`${x},${y}`) ?? 0) + 1);
    pa.set(x, (pa.get(x) ?? 0) + 1);
    pb.set(y, (pb.get(y) ?? 0) + 1);
  }
  const entropy = (m: Map<number, number>) =>
    [...m.values()].reduce((h, c) => h - (c / n) * Math.log(c / n), 0);
  let mi = 0;
  for (const [key, c] of joint) {
    const [x, y] = key.split(',').map(Number) as [number, number];
    mi += (c / n) * Math.log((c * n) / ((pa.get(x) as number) * (pb.get(y) as number)));
  }
  const ha = entropy(pa);
  const hb = entropy(pb);
  if (ha === 0 && hb === 0) return 1;
  return (2 * mi) / (ha + hb);
}
