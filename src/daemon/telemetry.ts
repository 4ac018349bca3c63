import type { Logger } from '../logger.js';
import type { BatchDecision, DaemonEvent, DeadLetter, InputRecord, ResultRecord } from '../records.js';

/** One micro-batch as the daemon handled it. */
export interface BatchObservation {
  /** `topic/partition` */
  readonly partition: string;
  readonly firstOffset: string;
  readonly lastOffset: string;
  /** Epoch milliseconds when the batch was handled. */
  readonly time: number;
  readonly results: readonly ResultRecord[];
  /** The policy's decision ('route' | 'allocate') and its reason ('fast_path', 'low_entropy', …). */
  readonly decision: { readonly kind: string; readonly reason: string };
  /** Whether the full check over all masks ran. */
  readonly checked: boolean;
  /** Labelled records, and how many of them their task's mask predicted right before training on them. */
  readonly prequential: { readonly correct: number; readonly labelled: number };
  /** Seconds spent inferring the task (the check, or the fast path's entropy). */
  readonly inferSeconds: number;
  readonly trainSteps: number;
  readonly trainSeconds: number;
}

export interface CommitObservation {
  readonly seconds: number;
  readonly outcome: 'applied' | 'fenced' | 'failed';
}

/**
 * Where the daemon's source is: `running` once it started, then `finished` (a finite source delivered
 * everything), `stopped` (stop() ended it first) or `failed` (it ended with an error).
 */
export type SourceState = 'running' | 'finished' | 'stopped' | 'failed';

export interface SourceObservation {
  readonly state: SourceState;
  /** Epoch milliseconds of the change. */
  readonly time: number;
}

/**
 * What the daemon reports as it works, for metrics, the API and the dashboard (src/ops). Calls are
 * synchronous and must not throw; an observer keeps its own bounded state.
 */
export interface DaemonObserver {
  /** Records received from the source (before decoding). */
  received(partition: string, records: number, lag: number | null): void;
  batch(observation: BatchObservation): void;
  deadLettered(letters: readonly DeadLetter[]): void;
  committed(observation: CommitObservation): void;
  /** Events of a commit, after the sink acknowledged them. */
  events(events: readonly DaemonEvent[]): void;
  /** Decision-log entries of a commit, after the sink acknowledged them. */
  decided?(decisions: readonly BatchDecision[]): void;
  /** The source started or ended. */
  source(observation: SourceObservation): void;
}

/** Fans every call out to several observers. */
export function observers(...list: readonly DaemonObserver[]): DaemonObserver {
  return {
    received: (partition, records, lag) => {
      for (const o of list) o.received(partition, records, lag);
    },
    batch: (observation) => {
      for (const o of list) o.batch(observation);
    },
    deadLettered: (letters) => {
      for (const o of list) o.deadLettered(letters);
    },
    committed: (observation) => {
      for (const o of list) o.committed(observation);
    },
    events: (events) => {
      for (const o of list) o.events(events);
    },
    decided: (decisions) => {
      for (const o of list) o.decided?.(decisions);
    },
    source: (observation) => {
      for (const o of list) o.source(observation);
    },
  };
}

/**
 * Runs a source from start to end (`consume`) and reports it to `observer`: `running` first, then
 * `finished` when it ends by itself, `stopped` when `stopping()` says the daemon ended it, `failed`
 * when it throws (the error is rethrown). Times come from `clock`, the system clock by default.
 */
export async function observeSource(
  observer: DaemonObserver | undefined,
  clock: (() => Date) | undefined,
  stopping: () => boolean,
  consume: () => Promise<void>,
): Promise<void> {
  const report = (state: SourceState) =>
    observer?.source({ state, time: (clock?.() ?? new Date()).getTime() });
  report('running');
  try {
    await consume();
  } catch (error) {
    report(stopping() ? 'stopped' : 'failed');
    throw error;
  }
  report(stopping() ? 'stopped' : 'finished');
}

/** A warning per dead-lettered record and an info line per event of a handled batch. */
export function logLettersAndEvents(
  log: Logger,
  letters: readonly DeadLetter[],
  events: readonly DaemonEvent[],
): void {
  for (const letter of letters) {
    log.warn('record dead-lettered', { ...letter.source, reason: letter.reason, detail: letter.detail });
  }
  for (const event of events) log.info(event.type, { ...event });
}

/** The debug log line of one micro-batch's decision (task and mask version of its stream afterwards). */
export function logDecision(
  log: Logger,
  learner: {
    currentTask(stream: string): number | null;
    readonly learnedTasks: readonly { readonly version: number }[];
  },
  records: readonly InputRecord[],
  decision: { kind: string; reason: string },
  checked: boolean,
  cutShort = false,
): void {
  const first = records[0];
  const last = records[records.length - 1];
  if (first === undefined || last === undefined) return;
  const task = learner.currentTask(`${first.position.topic}/${first.position.partition}`);
  log.debug('decision', {
    topic: first.position.topic,
    partition: first.position.partition,
    offset: first.position.offset,
    lastOffset: last.position.offset,
    task,
    mask: task === null ? null : (learner.learnedTasks[task]?.version ?? null),
    decision: decision.kind,
    reason: decision.reason,
    checked,
    records: records.length,
    ...(cutShort ? { cutShort } : {}),
  });
}
