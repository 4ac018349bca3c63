import type {
  BatchObservation,
  CommitObservation,
  DaemonObserver,
  SourceObservation,
} from '../daemon/telemetry.js';
import { RECORD_REJECT_REASONS, type RecordRejectReason } from '../errors.js';
import type { BatchDecision, DaemonEvent, DeadLetter, SourcePosition } from '../records.js';
import type { ApiDecisionsSummary, ApiStatus, ApiStoreWrites, ApiTimelinePoint } from './api-types.js';
import { Ring } from './ring.js';
import { StoreWrites } from './store-writes.js';

/** What the API keeps per task since this process started. */
export interface TaskActivity {
  readonly routed: number;
  readonly meanConfidence: number | null;
  readonly lastSeen: { readonly at: SourcePosition; readonly time: string } | null;
}

/** A server-sent event: `id` increases by one per message. */
export interface LiveMessage {
  readonly id: number;
  readonly type: string;
  readonly data: unknown;
}

export interface ActivityOptions {
  /** Micro-batch decisions kept for /api/v1/timeline. */
  readonly timelineSize?: number;
  /** Messages kept for reconnecting clients (Last-Event-ID). */
  readonly replaySize?: number;
  /** Decision-log entries kept for /api/v1/decisions. */
  readonly decisionsSize?: number;
  readonly clock?: () => number;
}

const RATE_WINDOW_MS = 10_000;

/**
 * The daemon's recent activity for the API and the dashboard: per-task counters, a bounded timeline
 * of decisions, the records-per-second rate, dead letters by reason, each partition's consumer lag,
 * state commits and their latency, the source's state, and the live message stream (daemon events
 * and a periodic decisions summary) with a bounded replay ring. Memory is bounded by the options and
 * by the source's partitions.
 */
export class Activity implements DaemonObserver {
  private readonly tasks = new Map<
    number,
    { routed: number; confidenceSum: number; lastSeen: TaskActivity['lastSeen'] }
  >();
  private readonly timeline: Ring<ApiTimelinePoint>;
  private readonly replay: Ring<LiveMessage>;
  private readonly decisionLog: Ring<BatchDecision>;
  private readonly listeners = new Set<(message: LiveMessage) => void>();
  private readonly clock: () => number;
  private readonly rate: { t: number; records: number }[] = [];
  private nextId = 1;
  private pending = emptyInterval();
  private lastSummaryAt: number;
  private readonly lags = new Map<string, number | null>();
  private readonly lettersByReason = new Map<RecordRejectReason, number>(
    RECORD_REJECT_REASONS.map((reason) => [reason, 0]),
  );
  private readonly commits = new StoreWrites();
  private sourceStatus: ApiStatus['sourceState'] = { state: 'not_started', startedAt: null, endedAt: null };
  recordsIn = 0;
  recordsOut = 0;
  deadLetters = 0;

  constructor(options: ActivityOptions = {}) {
    this.timeline = new Ring(options.timelineSize ?? 2000);
    this.replay = new Ring(options.replaySize ?? 1000);
    this.decisionLog = new Ring(options.decisionsSize ?? 1000);
    this.clock = options.clock ?? Date.now;
    this.lastSummaryAt = this.clock();
  }

  received(partition: string, records: number, lag: number | null): void {
    this.recordsIn += records;
    this.lags.set(partition, lag);
  }

  batch(observation: BatchObservation): void {
    const { results } = observation;
    const first = results[0];
    if (first === undefined) return;
    let entropy = 0;
    let confidence = 0;
    for (const result of results) {
      entropy += result.entropy;
      confidence += result.confidence;
    }
    // Every result of a micro-batch is routed to the same task.
    const last = results[results.length - 1] as typeof first;
    this.countForTask(first.task, results.length, confidence, last.source, observation.time);
    const point: ApiTimelinePoint = {
      t: observation.time,
      partition: observation.partition,
      firstOffset: observation.firstOffset,
      lastOffset: observation.lastOffset,
      records: results.length,
      task: first.task,
      newTask: first.newTask,
      meanEntropy: entropy / results.length,
      meanConfidence: confidence / results.length,
      decision: observation.decision.kind,
    };
    this.timeline.push(point);
    this.recordsOut += results.length;
    this.rate.push({ t: observation.time, records: results.length });
    const interval = this.pending;
    interval.records += results.length;
    interval.entropySum += entropy;
    interval.confidenceSum += confidence;
    interval.byTask[first.task] = (interval.byTask[first.task] ?? 0) + results.length;
    if (first.newTask) interval.newTasks++;
    interval.points.push(point);
  }

  deadLettered(letters: readonly DeadLetter[]): void {
    this.deadLetters += letters.length;
    for (const { reason } of letters)
      this.lettersByReason.set(reason, (this.lettersByReason.get(reason) ?? 0) + 1);
  }

  committed(observation: CommitObservation): void {
    this.commits.add(observation, this.clock());
  }

  source(observation: SourceObservation): void {
    const time = new Date(observation.time).toISOString();
    this.sourceStatus =
      observation.state === 'running'
        ? { state: 'running', startedAt: time, endedAt: null }
        : { state: observation.state, startedAt: this.sourceStatus.startedAt, endedAt: time };
  }

  /** Where the source is, and since when. */
  sourceState(): ApiStatus['sourceState'] {
    return this.sourceStatus;
  }

  /** `topic/partition` → its consumer lag as of its last batch (null where the source knows no end). */
  consumerLag(): Record<string, number | null> {
    return Object.fromEntries(this.lags);
  }

  /** Reason code → records dead-lettered for it since start, every code of the fixed set. */
  deadLettersByReason(): Record<string, number> {
    return Object.fromEntries(this.lettersByReason);
  }

  storeWrites(): ApiStoreWrites {
    return this.commits.view();
  }

  events(events: readonly DaemonEvent[]): void {
    for (const event of events) this.publish(event.type, event);
  }

  /** Publishes the summary of the decisions since the last call (the HTTP server calls it on a timer). */
  summarize(): ApiDecisionsSummary {
    const now = this.clock();
    const interval = this.pending;
    this.pending = emptyInterval();
    const seconds = Math.max((now - this.lastSummaryAt) / 1000, 1e-3);
    this.lastSummaryAt = now;
    const summary: ApiDecisionsSummary = {
      t: now,
      records: interval.records,
      perSecond: interval.records / seconds,
      meanEntropy: interval.records === 0 ? null : interval.entropySum / interval.records,
      meanConfidence: interval.records === 0 ? null : interval.confidenceSum / interval.records,
      byTask: interval.byTask,
      newTasks: interval.newTasks,
      points: interval.points,
    };
    this.publish('decisions', summary);
    return summary;
  }

  /** Results per second over the last ten seconds. */
  perSecond(): number {
    const now = this.clock();
    while (this.rate.length > 0 && (this.rate[0] as { t: number }).t < now - RATE_WINDOW_MS)
      this.rate.shift();
    let records = 0;
    for (const entry of this.rate) records += entry.records;
    return records / (RATE_WINDOW_MS / 1000);
  }

  task(task: number): TaskActivity {
    const stats = this.tasks.get(task);
    if (stats === undefined) return { routed: 0, meanConfidence: null, lastSeen: null };
    return {
      routed: stats.routed,
      meanConfidence: stats.routed === 0 ? null : stats.confidenceSum / stats.routed,
      lastSeen: stats.lastSeen,
    };
  }

  decided(decisions: readonly BatchDecision[]): void {
    for (const decision of decisions) this.decisionLog.push(decision);
  }

  /** The last `limit` decision-log entries (of `partition` only, when given), oldest first. */
  recentDecisions(limit: number, partition?: string): readonly BatchDecision[] {
    const all = this.decisionLog.items();
    const kept = partition === undefined ? all : all.filter((d) => d.partition === partition);
    return kept.slice(Math.max(0, kept.length - limit));
  }

  timelinePoints(): readonly ApiTimelinePoint[] {
    return this.timeline.items();
  }

  /**
   * Calls `listener` for every new message; first replays kept messages after `lastEventId` (a
   * reconnecting client's Last-Event-ID). Returns the unsubscribe function.
   */
  subscribe(listener: (message: LiveMessage) => void, lastEventId?: number): () => void {
    if (lastEventId !== undefined) {
      for (const message of this.replay.items()) if (message.id > lastEventId) listener(message);
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  private publish(type: string, data: unknown): void {
    const message: LiveMessage = { id: this.nextId++, type, data };
    this.replay.push(message);
    for (const listener of this.listeners) listener(message);
  }

  private countForTask(
    task: number,
    records: number,
    confidenceSum: number,
    at: SourcePosition,
    time: number,
  ): void {
    let stats = this.tasks.get(task);
    if (stats === undefined) {
      stats = { routed: 0, confidenceSum: 0, lastSeen: null };
      this.tasks.set(task, stats);
    }
    stats.routed += records;
    stats.confidenceSum += confidenceSum;
    stats.lastSeen = { at, time: new Date(time).toISOString() };
  }
}

function emptyInterval() {
  return {
    records: 0,
    entropySum: 0,
    confidenceSum: 0,
    byTask: {} as Record<string, number>,
    newTasks: 0,
    points: [] as ApiTimelinePoint[],
  };
}
