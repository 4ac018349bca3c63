import { type BenchRule, discoveryTable, runDiscoveryBench } from '../bench/discovery/bench.js';
import { SUITE_SEEDS, suiteStreams } from '../bench/discovery/suite.js';
import { BACKEND_PREFERENCES, type BackendPreference, selectBackend } from '../model/network/backend.js';
import { OptionReader } from './options.js';
import { Progress } from './progress.js';

/** `supsupd bench discovery`: the discovery suite through the daemon, scored per record. */
export async function benchDiscovery(raw: Readonly<Record<string, unknown>>): Promise<void> {
  const r = new OptionReader(raw);
  const ruleOption = r.choice('rule', ['evidence', 'paper', 'both'] as const, 'both');
  const seeds = r.integerList('seeds') ?? [...SUITE_SEEDS];
  const filter = typeof raw.filter === 'string' ? raw.filter : undefined;
  const seed = r.integer('seed', 1, 0, 0xffffffff);
  const preference = r.choice<BackendPreference>('backend', BACKEND_PREFERENCES, 'wasm');
  const streams = suiteStreams({ seeds, ...(filter === undefined ? {} : { filter }) });
  if (streams.length === 0) r.problem(`--filter '${filter}' matches no stream of the suite`);
  r.finish('bench discovery');
  const backend = await selectBackend(preference);
  const rules: BenchRule[] = ruleOption === 'both' ? ['evidence', 'paper'] : [ruleOption];
  const progress = new Progress();
  const report = await runDiscoveryBench({
    streams,
    rules,
    seed,
    onProgress: (done, total, label) => progress.update(done, total, label),
  });
  progress.done();
  if (raw.json === true) {
    const command = 'bench discovery';
    process.stdout.write(
      `${JSON.stringify({ command, backend: backend.backend, seeds, seed, ...report })}\n`,
    );
    return;
  }
  process.stdout.write(discoveryTable(report));
}
