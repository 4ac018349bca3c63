/**
 * The error registry and the typed error of the daemon. Every code the daemon throws, returns to an
 * HTTP client or writes on a dead letter is a key of one of the three tables below, with its
 * `retriable` default, its HTTP status where it has one, and a one-line meaning. docs/errors.md is
 * generated from these tables (`npm run docs:errors`); a unit test fails when it is out of date or
 * when src/ names a code that is not here.
 *
 * `code` is stable across releases (match on it, never on the message); `retriable` says whether the
 * same call may succeed later without a change of input or configuration.
 */
export interface ErrorSpec {
  /** The default of SupsupError.retriable; a throw site may override it when it knows better. */
  readonly retriable: boolean;
  /** The status the ops HTTP surface answers with; absent where the code never reaches a client as such. */
  readonly status?: number;
  readonly meaning: string;
}

/** Codes of SupsupError: what the daemon, CLI, stores, streams and jobs throw. */
export const DAEMON_ERRORS = {
  E_CONFIG: {
    retriable: false,
    meaning: 'The configuration or a CLI option is invalid; every problem is listed.',
  },
  E_BAD_ARGUMENT: {
    retriable: false,
    status: 400,
    meaning: 'A caller passed a value outside the contract (shape, range, type).',
  },
  E_BACKEND_UNAVAILABLE: {
    retriable: false,
    meaning: 'No usable compute backend for the preference, or a host the mask bank cannot run on.',
  },
  E_DATASET_MISSING: { retriable: false, meaning: 'A dataset file is not where the configuration says.' },
  E_DATASET_CORRUPT: {
    retriable: false,
    meaning: 'A dataset file is truncated or not in the expected format.',
  },
  E_CODEC: {
    retriable: false,
    meaning: 'Encoded bytes (mask, training state) are malformed or fail their CRC.',
  },
  E_ARCHIVE: {
    retriable: false,
    meaning:
      'A mask archive is not one, fails its CRC-32, has a newer format version, or holds inconsistent contents.',
  },
  E_ARCH_MISMATCH: {
    retriable: false,
    meaning: 'A well-formed mask or state was made for another network (arch key or size differs).',
  },
  E_NO_MASKS: {
    retriable: false,
    status: 409,
    meaning: 'Inference or a screen was asked for before any task has a mask.',
  },
  E_STORE_UNAVAILABLE: {
    retriable: true,
    meaning:
      'The mask store cannot be reached or written now (network, disk full); the site says if transient.',
  },
  E_STORE_CORRUPT: {
    retriable: false,
    meaning: 'The mask store holds data that fails validation or its checksum.',
  },
  E_STORE_POLICY: {
    retriable: false,
    meaning:
      'The store is set up unsafely (Redis persists nothing, may evict keys, or its ACL refuses a command).',
  },
  E_STORE_CONFLICT: {
    retriable: false,
    meaning: 'Another writer holds the store, lock or job lease, or won a concurrent commit.',
  },
  E_STORE_REGRESSED: {
    retriable: false,
    meaning:
      'The store is empty, replaced or rolled back behind what was committed (its epoch, sequence or offsets); see store.onRegression.',
  },
  E_RECORD_INVALID: {
    retriable: false,
    meaning: 'A stream record cannot be decoded; the stream dead-letters it with one of the reasons below.',
  },
  E_SOURCE: {
    retriable: false,
    meaning: 'A stream source (Kafka consumer, input file, stdin) failed; the site says if transient.',
  },
  E_SINK: {
    retriable: false,
    meaning: 'A stream sink (Kafka producer, output files, stdout) failed; the site says if transient.',
  },
  E_JOB_UNKNOWN: { retriable: false, status: 404, meaning: 'A scheduled job name that is not registered.' },
  E_STOPPED: {
    retriable: false,
    status: 503,
    meaning: 'The component was stopped (the daemon is shutting down); not retriable on this process.',
  },
  E_DEPENDENCY: {
    retriable: false,
    meaning: 'An installed dependency is not the build the daemon needs (kafkajs without its patches).',
  },
  E_INTERNAL: {
    retriable: false,
    meaning: 'A bug: an invariant of the daemon does not hold (HTTP clients get 500 and a generic message).',
  },
} as const satisfies Record<string, ErrorSpec>;

/** Reasons on dead letters, in the order the record codec checks them (the first failing check wins). */
export const RECORD_REJECT_REASONS = [
  'E_RECORD_TOO_LARGE',
  'E_RECORD_CONTENT_TYPE',
  'E_RECORD_JSON',
  'E_RECORD_PROTO',
  'E_RECORD_SCHEMA',
  'E_RECORD_DIMENSION',
  'E_RECORD_NONFINITE',
  'E_RECORD_LABEL',
  'E_RECORD_ID',
  'E_RECORD_INTERNAL',
] as const;

export type RecordRejectReason = (typeof RECORD_REJECT_REASONS)[number];

/** Dead-letter reasons: never thrown; a record with one goes to the dead-letter destination. */
export const RECORD_ERRORS: { readonly [code in RecordRejectReason]: ErrorSpec } = {
  E_RECORD_TOO_LARGE: {
    retriable: false,
    meaning: 'Key + value + header bytes exceed the record size limit.',
  },
  E_RECORD_CONTENT_TYPE: {
    retriable: false,
    meaning: 'The content-type header names an unsupported format.',
  },
  E_RECORD_JSON: { retriable: false, meaning: 'The value is not valid UTF-8 or not strict JSON (RFC 8259).' },
  E_RECORD_PROTO: {
    retriable: false,
    meaning: 'A `__proto__`, `constructor` or `prototype` key at any depth.',
  },
  E_RECORD_SCHEMA: {
    retriable: false,
    meaning: 'A tombstone, not an object, unknown or duplicate keys, or wrong value types.',
  },
  E_RECORD_DIMENSION: {
    retriable: false,
    meaning: 'x has not `dim` values (binary: the value is not dim·4 bytes).',
  },
  E_RECORD_NONFINITE: {
    retriable: false,
    meaning: 'A feature is NaN or ±Infinity as float32 (1e39 overflows).',
  },
  E_RECORD_LABEL: { retriable: false, meaning: 'y is not an integer in [0, classes).' },
  E_RECORD_ID: { retriable: false, meaning: 'The id is not 1 to 256 printable ASCII characters.' },
  E_RECORD_INTERNAL: {
    retriable: false,
    meaning: 'A bug in the decoder; the record is dead-lettered rather than crashing the daemon.',
  },
};

/** Codes only the ops HTTP surface answers with (HttpError); the status is fixed per code. */
export const HTTP_ERRORS = {
  E_HTTP_NOT_FOUND: { retriable: false, status: 404, meaning: 'No route for the path.' },
  E_HTTP_METHOD: { retriable: false, status: 405, meaning: 'The route exists but not for this method.' },
  E_HTTP_ADMIN_DISABLED: {
    retriable: false,
    status: 403,
    meaning: 'Admin endpoints are disabled because no http.token is configured.',
  },
  E_HTTP_UNAUTHORIZED: { retriable: false, status: 401, meaning: 'A valid bearer token is required.' },
  E_HTTP_MEDIA_TYPE: { retriable: false, status: 415, meaning: 'The body must be application/json.' },
  E_HTTP_BODY_TOO_LARGE: {
    retriable: false,
    status: 413,
    meaning: 'The body exceeds the route’s byte limit.',
  },
  E_HTTP_JSON: { retriable: false, status: 400, meaning: 'The body is not valid JSON.' },
  E_HTTP_BAD_ID: {
    retriable: false,
    status: 400,
    meaning: 'A task id or event id in the path or query is malformed.',
  },
  E_HTTP_BAD_LIMIT: {
    retriable: false,
    status: 400,
    meaning: 'The `limit` query parameter is out of range.',
  },
  E_HTTP_NO_TASK: { retriable: false, status: 404, meaning: 'No task with that id.' },
  E_HTTP_BUSY: { retriable: true, status: 503, meaning: 'Too many event streams are open; try again later.' },
  E_HTTP_INFER_BODY: {
    retriable: false,
    status: 400,
    meaning: 'The inference body is not {"x": [[...], ...]} of finite numbers.',
  },
  E_HTTP_INFER_ROWS: {
    retriable: false,
    status: 413,
    meaning: 'More inference rows than one request may carry.',
  },
} as const satisfies Record<string, ErrorSpec & { readonly status: number }>;

export type ErrorCode = keyof typeof DAEMON_ERRORS;
export type HttpErrorCode = keyof typeof HTTP_ERRORS;
/** Any code of the registry. */
export type RegisteredCode = ErrorCode | RecordRejectReason | HttpErrorCode;

/** The whole registry, one entry per code, grouped as docs/errors.md shows it. */
export const ERROR_REGISTRY: readonly {
  readonly family: string;
  readonly codes: Readonly<Record<string, ErrorSpec>>;
}[] = [
  { family: 'Daemon errors (SupsupError)', codes: DAEMON_ERRORS },
  { family: 'Dead-letter reasons (record codec)', codes: RECORD_ERRORS },
  { family: 'HTTP errors (ops surface)', codes: HTTP_ERRORS },
];

const ALL_CODES: ReadonlySet<string> = new Set(ERROR_REGISTRY.flatMap((group) => Object.keys(group.codes)));

/** Whether `code` is in the registry (for codes that arrive as text, e.g. from a test's scan of src/). */
export function isRegisteredCode(code: string): code is RegisteredCode {
  return ALL_CODES.has(code);
}

export class SupsupError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    options: { retriable?: boolean; cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SupsupError';
    this.code = code;
    this.retriable = options.retriable ?? DAEMON_ERRORS[code].retriable;
    this.details = options.details ?? {};
  }
}

export function isSupsupError(value: unknown): value is SupsupError {
  return value instanceof SupsupError;
}

/** The message of any thrown value, for logs and CLI output. */
export function errorMessage(value: unknown): string {
  return value instanceof Error ? value.message : String(value);
}
