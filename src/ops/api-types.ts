/**
 * The HTTP API's JSON shapes (`/api/v1/…`), shared by the server (src/ops/http/) and the dashboard
 * (src/ops/dashboard/, which reads the same fields in plain JavaScript). Times are ISO-8601 strings,
 * offsets decimal strings (Kafka offsets are int64).
 */

export interface ApiPosition {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

/**
 * Where the source is: `not_started` (state is restored, the source not yet started), `running`,
 * `finished` (a finite source, a file or the demo stream, delivered everything), `stopped` (the
 * daemon was stopped before the source ended) or `failed` (the source ended with an error).
 */
export type ApiSourceState = 'not_started' | 'running' | 'finished' | 'stopped' | 'failed';

/** State commits to the mask store since this process started, and their latency. */
export interface ApiStoreWrites {
  readonly applied: number;
  readonly fenced: number;
  readonly failed: number;
  /** Latency of the last commits (up to 256, any outcome), nearest-rank percentiles; null before the first. */
  readonly recent: {
    readonly commits: number;
    readonly p50Seconds: number;
    readonly p95Seconds: number;
    readonly maxSeconds: number;
  } | null;
  readonly last: {
    readonly seconds: number;
    readonly outcome: 'applied' | 'fenced' | 'failed';
    readonly time: string;
  } | null;
}

/** `GET /api/v1/status` */
export interface ApiStatus {
  readonly version: string;
  readonly startedAt: string;
  readonly uptimeSeconds: number;
  readonly ready: boolean;
  /** Why the daemon is not ready (empty when ready). */
  readonly notReady: readonly string[];
  readonly draining: boolean;
  readonly backend: string;
  /** The source's kind (`kafka`, `file`, `stdin`, `demo`). */
  readonly source: string;
  readonly sourceState: {
    readonly state: ApiSourceState;
    /** When the source started; null before. */
    readonly startedAt: string | null;
    /** When it finished, was stopped or failed; null before and while it runs. */
    readonly endedAt: string | null;
  };
  readonly store: string;
  readonly arch: { readonly key: string; readonly outputs: number; readonly realClasses: number };
  readonly tasks: number;
  readonly frozenTasks: number;
  readonly budget: number;
  /** `topic/partition` → the task that partition's stream is on now (null before the first mask). */
  readonly currentTasks: Readonly<Record<string, number | null>>;
  /**
   * `topic/partition` → records between its last handled batch and the partition's end (its high
   * watermark), as of that batch; null where the source does not know the end (file, stdin, demo).
   * Every partition a batch came from since start.
   */
  readonly consumerLag: Readonly<Record<string, number | null>>;
  readonly records: {
    readonly in: number;
    readonly out: number;
    readonly deadLettered: number;
    /** Reason code → records dead-lettered for it, for every code of the fixed set (src/errors.ts). */
    readonly deadLetteredByReason: Readonly<Record<string, number>>;
    /** Results per second over the last 10 s. */
    readonly perSecond: number;
  };
  readonly storeWrites: ApiStoreWrites;
  /**
   * Why task assignments should not be trusted now: `inputs_unscaled` (standardisation is off and
   * the inputs have large magnitudes, offsets or mixed scales) or `no_usable_accuracy` (no task
   * predicts its labels usefully). Empty when neither holds.
   */
  readonly warnings: readonly { readonly code: string; readonly message: string }[];
}

/** One row of `GET /api/v1/tasks`, and the body of `GET /api/v1/tasks/:id`. */
export interface ApiTask {
  readonly task: number;
  readonly version: number;
  readonly frozen: boolean;
  readonly trainSteps: number;
  /** Bytes of the bit-packed mask (1 bit per weight). */
  readonly maskBytes: number;
  /** Fraction of weights the mask keeps. */
  readonly density: number;
  readonly bornAt: ApiPosition;
  readonly bornTime: string;
  /** Records routed to this task since this process started. */
  readonly recordsRouted: number;
  /** Mean of the results' confidence for this task since start (null before the first). */
  readonly meanConfidence: number | null;
  /**
   * Share of the task's recent labelled records (up to the last 512) its mask predicted right before
   * training on them; null before the first labelled record.
   */
  readonly prequentialAccuracy: number | null;
  readonly lastSeen: { readonly at: ApiPosition; readonly time: string } | null;
}

export interface ApiTasks {
  readonly tasks: readonly ApiTask[];
}

/** One point of `GET /api/v1/timeline`: one micro-batch's decision. Oldest first; a bounded ring. */
export interface ApiTimelinePoint {
  /** Milliseconds since the epoch. */
  readonly t: number;
  readonly partition: string;
  readonly firstOffset: string;
  readonly lastOffset: string;
  readonly records: number;
  readonly task: number;
  readonly newTask: boolean;
  readonly meanEntropy: number;
  readonly meanConfidence: number;
  /** 'keep' | 'switch' | 'allocate' | … (the policy's decision kind) */
  readonly decision: string;
}

export interface ApiTimeline {
  readonly points: readonly ApiTimelinePoint[];
}

/**
 * Server-sent events on `GET /api/v1/events` (`event:` is the type, `data:` the JSON below, `id:` a
 * sequence number; a reconnect with Last-Event-ID resumes from the in-memory ring).
 * - `task_discovered`, `mask_frozen`, `budget_reached`: the daemon's events (src/records.ts).
 * - `decisions`: a summary every `http.summaryIntervalMs` of the decisions since the last one.
 */
export interface ApiDecisionsSummary {
  readonly t: number;
  readonly records: number;
  readonly perSecond: number;
  readonly meanEntropy: number | null;
  readonly meanConfidence: number | null;
  /** task → records routed in the interval */
  readonly byTask: Readonly<Record<string, number>>;
  readonly newTasks: number;
  readonly points: readonly ApiTimelinePoint[];
}

/** `POST /api/v1/infer` request: a batch of inputs, each of the model's input dimension. */
export interface ApiInferRequest {
  readonly x: readonly (readonly number[])[];
}

export interface ApiInferResponse {
  readonly task: number | null;
  readonly confidence: number;
  readonly entropy: number;
  readonly predictions: readonly number[];
}

/** Error bodies: a stable code and a message; never a stack or a secret. */
export interface ApiError {
  readonly error: { readonly code: string; readonly message: string };
}
