/**
 * Typed errors with stable codes. Every error the daemon raises on purpose is a SupsupError:
 * `code` is stable across releases (match on it, never on the message) and `retriable` says
 * whether the same call may succeed later without a change of input or configuration.
 */
export type ErrorCode =
  | 'E_CONFIG'
  | 'E_BAD_ARGUMENT'
  | 'E_BACKEND_UNAVAILABLE'
  | 'E_DATASET_MISSING'
  | 'E_DATASET_CORRUPT'
  | 'E_CODEC'
  | 'E_ARCH_MISMATCH'
  | 'E_NO_MASKS'
  | 'E_STORE_UNAVAILABLE'
  | 'E_STORE_CORRUPT'
  | 'E_STORE_POLICY'
  | 'E_STORE_CONFLICT'
  /** A stream record that cannot be decoded (the stream sends it to the dead-letter destination instead). */
  | 'E_RECORD_INVALID'
  /** A stream source (Kafka consumer, input file, stdin) failed; `retriable` says whether a retry may help. */
  | 'E_SOURCE'
  /** A stream sink (Kafka producer, output files, stdout) failed; `retriable` says whether a retry may help. */
  | 'E_SINK'
  /** A scheduled job name that is not registered (an admin endpoint answers 404). */
  | 'E_JOB_UNKNOWN'
  /** The component was stopped (the daemon is shutting down); not retriable on this process. */
  | 'E_STOPPED'
  | 'E_INTERNAL';

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
    this.retriable = options.retriable ?? false;
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
