import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type {
  BatchObservation,
  CommitObservation,
  DaemonObserver,
  SourceObservation,
  SourceState,
} from '../daemon/telemetry.js';
import { RECORD_REJECT_REASONS } from '../errors.js';
import type { DaemonEvent, DeadLetter } from '../records.js';

/** The outcome of one scheduled job run, as the scheduler reports it. */
export interface JobRunObservation {
  readonly job: string;
  readonly outcome: string;
  readonly seconds: number;
}

/** What the metrics read from the daemon when scraped (gauges of state, not of events). */
export interface MetricsViews {
  tasks(): { total: number; frozen: number; maskBytes: number };
  ready(): boolean;
  /** Each task's recent prequential accuracy (tasks without labelled records left out). */
  prequentialAccuracies(): readonly number[];
}

/** The labels of `supsupd_build_info`: what runs, read once at start. */
export interface BuildInfo {
  /** supsupd's version (package.json). */
  readonly version: string;
  /** Node's version (`process.version`). */
  readonly node: string;
  /** The tfjs backend in use (tensorflow, wasm, cpu). */
  readonly backend: string;
}

const SOURCE_STATES: readonly SourceState[] = ['running', 'finished', 'stopped', 'failed'];
const ENTROPY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5];
const CONFIDENCE_BUCKETS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99];
const ACCURACY_BOUNDS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1];
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * The daemon's Prometheus metrics (prom-client). Labels are bounded: decision kinds and reasons, dead
 * letter reason codes (the fixed set RECORD_REJECT_REASONS), commit outcomes, source states, job names
 * and outcomes, partitions of the source (bounded by the topics' partition counts) — never task ids,
 * record ids or offsets.
 */
export class DaemonMetrics implements DaemonObserver {
  readonly registry = new Registry();
  private readonly recordsIn: Counter<'partition'>;
  private readonly recordsOut: Counter;
  private readonly deadLetters: Counter<'reason'>;
  private readonly decisions: Counter<'kind' | 'reason'>;
  private readonly allocations: Counter<'reason'>;
  private readonly checks: Counter;
  private readonly labelled: Counter;
  private readonly predictedRight: Counter;
  private readonly entropy: Histogram;
  private readonly confidence: Histogram;
  private readonly inferLatency: Histogram<'checked'>;
  private readonly trainSteps: Counter;
  private readonly trainSeconds: Counter;
  private readonly storeWrite: Histogram<'outcome'>;
  private readonly lag: Gauge<'partition'>;
  private readonly sourceState: Gauge<'state'>;
  private readonly eventsByType: Counter<'type'>;
  private readonly jobRuns: Counter<'job' | 'outcome'>;
  private readonly jobSeconds: Histogram<'job'>;

  constructor(views: MetricsViews, build: BuildInfo) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'supsupd_' });
    new Gauge({
      name: 'supsupd_build_info',
      help: 'Always 1; the labels say which supsupd, Node and tfjs backend run.',
      labelNames: ['version', 'node', 'backend'],
      registers,
    }).set({ version: build.version, node: build.node, backend: build.backend }, 1);
    this.recordsIn = new Counter({
      name: 'supsupd_records_in_total',
      help: 'Records received from the source, before decoding.',
      labelNames: ['partition'],
      registers,
    });
    this.recordsOut = new Counter({
      name: 'supsupd_records_out_total',
      help: 'Results written to the sink (one per valid record).',
      registers,
    });
    this.deadLetters = new Counter({
      name: 'supsupd_dead_letters_total',
      help: 'Records sent to the dead-letter destination, by reason code (every code of the fixed set, from 0).',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of RECORD_REJECT_REASONS) this.deadLetters.inc({ reason }, 0);
    this.decisions = new Counter({
      name: 'supsupd_decisions_total',
      help: 'Micro-batch decisions of the discovery policy.',
      labelNames: ['kind', 'reason'],
      registers,
    });
    this.allocations = new Counter({
      name: 'supsupd_allocations_total',
      help: 'New masks allocated, by the reason the policy gave.',
      labelNames: ['reason'],
      registers,
    });
    this.checks = new Counter({
      name: 'supsupd_task_checks_total',
      help: 'Full task-inference checks over all masks.',
      registers,
    });
    this.labelled = new Counter({
      name: 'supsupd_prequential_labelled_total',
      help: 'Labelled records learnt from (their predictions were made before training on them).',
      registers,
    });
    this.predictedRight = new Counter({
      name: 'supsupd_prequential_correct_total',
      help: 'Labelled records whose task mask predicted their label right before training on them: the prequential accuracy is its rate over supsupd_prequential_labelled_total.',
      registers,
    });
    this.entropy = new Histogram({
      name: 'supsupd_entropy',
      help: 'Output entropy (nats) of each result under its routed mask.',
      buckets: ENTROPY_BUCKETS,
      registers,
    });
    this.confidence = new Histogram({
      name: 'supsupd_confidence',
      help: 'Confidence (top real-class probability) of each result.',
      buckets: CONFIDENCE_BUCKETS,
      registers,
    });
    this.inferLatency = new Histogram({
      name: 'supsupd_task_inference_seconds',
      help: 'Time to infer the task of a micro-batch (checked="true": the full check over all masks).',
      labelNames: ['checked'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.trainSteps = new Counter({
      name: 'supsupd_train_steps_total',
      help: 'Optimizer steps on mask scores.',
      registers,
    });
    this.trainSeconds = new Counter({
      name: 'supsupd_train_seconds_total',
      help: 'Time spent training mask scores.',
      registers,
    });
    this.storeWrite = new Histogram({
      name: 'supsupd_store_write_seconds',
      help: 'Latency of state commits to the mask store, by outcome (applied, fenced, failed).',
      labelNames: ['outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.lag = new Gauge({
      name: 'supsupd_consumer_lag',
      help: 'Records behind the end of each source partition, as of its last batch (Kafka; one series per partition of the topics consumed).',
      labelNames: ['partition'],
      registers,
    });
    this.sourceState = new Gauge({
      name: 'supsupd_source_state',
      help: '1 for the state the source is in (running, finished, stopped, failed), 0 for the others; no series before it started.',
      labelNames: ['state'],
      registers,
    });
    this.eventsByType = new Counter({
      name: 'supsupd_events_total',
      help: 'Daemon events written (task_discovered, mask_frozen, budget_reached).',
      labelNames: ['type'],
      registers,
    });
    this.jobRuns = new Counter({
      name: 'supsupd_job_runs_total',
      help: 'Scheduled job runs, by job and outcome.',
      labelNames: ['job', 'outcome'],
      registers,
    });
    this.jobSeconds = new Histogram({
      name: 'supsupd_job_duration_seconds',
      help: 'Duration of scheduled job runs.',
      labelNames: ['job'],
      buckets: [0.01, 0.1, 0.5, 1, 5, 15, 60, 300],
      registers,
    });
    this.defineStateGauges(views, registers);
  }

  private defineStateGauges(views: MetricsViews, registers: Registry[]): void {
    new Gauge({
      name: 'supsupd_tasks',
      help: 'Tasks (masks) the daemon knows.',
      registers,
      collect() {
        this.set(views.tasks().total);
      },
    });
    new Gauge({
      name: 'supsupd_tasks_frozen',
      help: 'Masks that finished training.',
      registers,
      collect() {
        this.set(views.tasks().frozen);
      },
    });
    new Gauge({
      name: 'supsupd_mask_bytes',
      help: 'Bytes of all bit-packed masks.',
      registers,
      collect() {
        this.set(views.tasks().maskBytes);
      },
    });
    new Gauge({
      name: 'supsupd_tasks_by_prequential_accuracy',
      help: 'Tasks whose recent prequential accuracy (labelled records predicted right before training on them) is at most `le`, cumulative like a histogram; tasks without labelled records are not counted.',
      labelNames: ['le'],
      registers,
      collect() {
        const accuracies = views.prequentialAccuracies();
        for (const bound of ACCURACY_BOUNDS) {
          this.set({ le: String(bound) }, accuracies.filter((a) => a <= bound).length);
        }
      },
    });
    new Gauge({
      name: 'supsupd_ready',
      help: '1 when the daemon is ready (the last /readyz answer), else 0.',
      registers,
      collect() {
        this.set(views.ready() ? 1 : 0);
      },
    });
  }

  received(partition: string, records: number, lag: number | null): void {
    this.recordsIn.inc({ partition }, records);
    if (lag !== null) this.lag.set({ partition }, lag);
  }

  batch(observation: BatchObservation): void {
    const { decision, results } = observation;
    this.recordsOut.inc(results.length);
    this.decisions.inc({ kind: decision.kind, reason: decision.reason });
    if (decision.kind === 'allocate') this.allocations.inc({ reason: decision.reason });
    if (observation.checked) this.checks.inc();
    if (observation.prequential.labelled > 0) {
      this.labelled.inc(observation.prequential.labelled);
      this.predictedRight.inc(observation.prequential.correct);
    }
    for (const result of results) {
      this.entropy.observe(result.entropy);
      this.confidence.observe(result.confidence);
    }
    this.inferLatency.observe({ checked: String(observation.checked) }, observation.inferSeconds);
    if (observation.trainSteps > 0) {
      this.trainSteps.inc(observation.trainSteps);
      this.trainSeconds.inc(observation.trainSeconds);
    }
  }

  deadLettered(letters: readonly DeadLetter[]): void {
    for (const letter of letters) this.deadLetters.inc({ reason: letter.reason });
  }

  committed(observation: CommitObservation): void {
    this.storeWrite.observe({ outcome: observation.outcome }, observation.seconds);
  }

  events(events: readonly DaemonEvent[]): void {
    for (const event of events) this.eventsByType.inc({ type: event.type });
  }

  source(observation: SourceObservation): void {
    for (const state of SOURCE_STATES) this.sourceState.set({ state }, state === observation.state ? 1 : 0);
  }

  jobRun(run: JobRunObservation): void {
    this.jobRuns.inc({ job: run.job, outcome: run.outcome });
    this.jobSeconds.observe({ job: run.job }, run.seconds);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
