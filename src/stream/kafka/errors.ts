/** kafkajs errors: which are retriable, which need a group re-join, and their SupsupError form. */
import { errorMessage, SupsupError } from '../../errors.js';

interface KafkaErrorShape {
  name?: unknown;
  type?: unknown;
  retriable?: unknown;
  message?: unknown;
  cause?: unknown;
}

/** kafkajs's notion of retriable (as its consumer's crash handler): the flag, or retries exhausted. */
export function isRetriableKafkaError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as KafkaErrorShape;
  if (e.retriable === true) return true;
  if (e.name === 'KafkaJSNumberOfRetriesExceeded') return true;
  return false;
}

/** Errors that need a group re-join before anything else can succeed. */
export function isRebalanceError(error: unknown): boolean {
  const type = (error as KafkaErrorShape | null)?.type;
  return (
    type === 'REBALANCE_IN_PROGRESS' ||
    type === 'NOT_COORDINATOR_FOR_GROUP' ||
    type === 'ILLEGAL_GENERATION' ||
    type === 'UNKNOWN_MEMBER_ID'
  );
}

/** Maps a kafkajs (or any) error to a SupsupError with `retriable` from kafkajs's flag. */
export function toKafkaSupsupError(
  error: unknown,
  code: 'E_SOURCE' | 'E_SINK',
  context: string,
): SupsupError {
  if (error instanceof SupsupError) return error;
  const e = (typeof error === 'object' && error !== null ? error : {}) as KafkaErrorShape;
  const details: Record<string, unknown> = {};
  if (typeof e.name === 'string') details.kafkaError = e.name;
  if (typeof e.type === 'string') details.kafkaType = e.type;
  return new SupsupError(code, `${context}: ${errorMessage(error)}`, {
    cause: error,
    retriable: isRetriableKafkaError(error),
    details,
  });
}
