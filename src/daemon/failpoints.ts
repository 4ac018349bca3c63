/**
 * Crash injection for fault tests: SUPSUPD_FAILPOINT="<name>@<n>" kills the process with SIGKILL the
 * n-th time the named point is reached. Names: after_state_commit (state durable, results not yet
 * written), after_results (results acknowledged, offsets not yet committed). Unset in production.
 */
const spec = parse(process.env.SUPSUPD_FAILPOINT);
let hits = 0;

function parse(value: string | undefined): { name: string; at: number } | null {
  if (value === undefined || value === '') return null;
  const match = /^([a-z_]+)@(\d+)$/.exec(value);
  if (match === null) throw new Error(`SUPSUPD_FAILPOINT must look like name@count, got '${value}'`);
  return { name: match[1] as string, at: Number(match[2]) };
}

export function failpoint(name: string): void {
  if (spec === null || spec.name !== name) return;
  hits++;
  if (hits === spec.at) process.kill(process.pid, 'SIGKILL');
}
