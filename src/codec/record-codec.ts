/**
 * Decoding of raw stream records into feature vectors, and encoding of results, events and dead
 * letters. `decodeRecord` never throws on any input: a record that cannot be decoded becomes a
 * DeadLetter with a stable reason code.
 *
 * Wire formats (content type from the `content-type` header, header names matched case-insensitively):
 *   application/json (default)                  {"x": number[dim], "y"?: int, "id"?: string}
 *   application/x-float32, application/octet-stream
 *                                               dim little-endian float32; label from header `y`,
 *                                               id from header `id`, else the record key
 *
 * Checks, in this order (the first failing one is the reason):
 *   E_RECORD_SCHEMA       null value (tombstone)
 *   E_RECORD_TOO_LARGE    key + value + header bytes > maxBytes (checked before anything is parsed)
 *   E_RECORD_CONTENT_TYPE unsupported content type
 *   E_RECORD_JSON         not valid UTF-8 or not valid JSON (RFC 8259, strict)
 *   E_RECORD_PROTO        a `__proto__`, `constructor` or `prototype` key at any depth
 *   E_RECORD_SCHEMA       not an object, unknown or duplicate keys, wrong value types
 *   E_RECORD_DIMENSION    x has not `dim` values (binary: value length is not dim·4)
 *   E_RECORD_NONFINITE    a value is NaN or ±Infinity as float32 (also 1e400, and 1e39, which overflows float32)
 *   E_RECORD_LABEL        y is not an integer in [0, classes)
 *   E_RECORD_ID           id does not match ^[\x20-\x7e]{1,256}$
 *
 * The JSON form is read by a small strict parser over the bytes (json-record-parser.ts) that writes `x`
 * straight into a Float32Array (no intermediate array of numbers) and never builds objects from the
 * input, so no input can reach an object prototype. `null` for `y` or `id` means absent.
 */
import { isUtf8 } from 'node:buffer';
import { endianness } from 'node:os';
import { type RecordRejectReason, SupsupError } from '../errors.js';
import type {
  DaemonEvent,
  DeadLetter,
  HeaderValue,
  InputRecord,
  RawRecord,
  ResultRecord,
  SourcePosition,
} from '../records.js';
import { AlignedCopies } from './aligned-copies.js';
import { capText } from './cap-text.js';
import { parseJsonRecord } from './json-record-parser.js';

export { RECORD_REJECT_REASONS, type RecordRejectReason } from '../errors.js';
export { AlignedCopies } from './aligned-copies.js';

export interface RecordLimits {
  /** Length of the feature vector. */
  readonly dim: number;
  /** Largest accepted record: key + value + header names and values, in bytes. */
  readonly maxBytes: number;
  /** Number of classes: a label must be an integer in [0, classes). */
  readonly classes: number;
}

export type DecodeOutcome =
  | { readonly ok: true; readonly record: InputRecord }
  | { readonly ok: false; readonly letter: DeadLetter };

/** Dead letters keep at most this many bytes of the original value. */
export const DEAD_LETTER_VALUE_CAP = 64 * 1024;
/** Longest `detail` text (it travels in a Kafka header). */
const DETAIL_CAP = 512;

export const CONTENT_TYPE_JSON = 'application/json';
export const CONTENT_TYPE_FLOAT32 = 'application/x-float32';
export const CONTENT_TYPE_OCTET_STREAM = 'application/octet-stream';

const ID_PATTERN = /^[\x20-\x7e]{1,256}$/;
const LABEL_HEADER_PATTERN = /^(?:0|[1-9][0-9]{0,9})$/;
const LITTLE_ENDIAN_HOST = endianness() === 'LE';

// ---------------------------------------------------------------------------------------------------------------
// Public API

/** Checks limits once (throws E_CONFIG on nonsense); decodeRecord calls it on every record. */
export function validateRecordLimits(limits: RecordLimits): void {
  const { dim, maxBytes, classes } = limits;
  if (!Number.isSafeInteger(dim) || dim < 1) {
    throw new SupsupError('E_CONFIG', `record dim must be a positive integer, got ${dim}`);
  }
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
    throw new SupsupError('E_CONFIG', `record maxBytes must be a positive integer, got ${maxBytes}`);
  }
  if (!Number.isSafeInteger(classes) || classes < 1) {
    throw new SupsupError('E_CONFIG', `record classes must be a positive integer, got ${classes}`);
  }
}

/**
 * Decodes one raw record. Never throws for any record (only for invalid `limits`, a programming
 * error): undecodable records come back as `{ ok: false, letter }`.
 */
export function decodeRecord(
  raw: RawRecord,
  limits: RecordLimits,
  copies: AlignedCopies = sharedCopies,
): DecodeOutcome {
  validateRecordLimits(limits);
  try {
    return decodeUnchecked(raw, limits, copies);
  } catch (error) {
    // Not reachable by design; a safety net so a decoder bug dead-letters one record instead of
    // crash-looping the partition.
    return reject(raw, 'E_RECORD_INTERNAL', `decoder failed: ${safeMessage(error)}`);
  }
}

/** The JSON line/value of a result. */
export function encodeResult(result: ResultRecord): Buffer {
  return Buffer.from(resultJson(result), 'utf8');
}

/**
 * The JSON text of a result, byte for byte what JSON.stringify gives for
 * `{id, source: {topic, partition, offset}, task, newTask, taskConfidence, confidence, entropy, prediction,
 * maskVersion}`,
 * built as one template string: no intermediate objects, and the topic's JSON form is computed once
 * per topic rather than once per result.
 */
export function resultJson(result: ResultRecord): string {
  const { source } = result;
  return (
    `{"id":${JSON.stringify(result.id)},"source":{"topic":${topicJson(source.topic)},` +
    `"partition":${jsonNumber(source.partition)},"offset":${JSON.stringify(source.offset)}},` +
    `"task":${jsonNumber(result.task)},"newTask":${result.newTask ? 'true' : 'false'},` +
    `"taskConfidence":${jsonNumber(result.taskConfidence)},` +
    `"confidence":${jsonNumber(result.confidence)},"entropy":${jsonNumber(result.entropy)},` +
    `"prediction":${jsonNumber(result.prediction)},"maskVersion":${jsonNumber(result.maskVersion)}}`
  );
}

/** JSON.stringify of a number: its shortest round-trip form, `null` for NaN and ±Infinity. */
function jsonNumber(value: number): string {
  return Number.isFinite(value) ? String(value) : 'null';
}

let lastTopic = '';
let lastTopicJson = '""';
function topicJson(topic: string): string {
  if (topic !== lastTopic) {
    lastTopic = topic;
    lastTopicJson = JSON.stringify(topic);
  }
  return lastTopicJson;
}

/** The JSON line/value of a daemon event. */
export function encodeEvent(event: DaemonEvent): Buffer {
  switch (event.type) {
    case 'task_discovered':
      return jsonBuffer({ type: event.type, task: event.task, at: positionJson(event.at), time: event.time });
    case 'mask_frozen':
      return jsonBuffer({ type: event.type, task: event.task, steps: event.steps, time: event.time });
    case 'budget_reached':
      return jsonBuffer({
        type: event.type,
        masks: event.masks,
        at: positionJson(event.at),
        time: event.time,
      });
  }
}

/** Headers of a dead letter in a Kafka DLQ topic (the value and key are the original ones, the value capped). */
export function encodeDeadLetterHeaders(letter: DeadLetter): Record<string, string> {
  return {
    'x-dlq-reason': letter.reason,
    'x-dlq-detail': capText(letter.detail, DETAIL_CAP),
    'x-dlq-topic': letter.source.topic,
    'x-dlq-partition': String(letter.source.partition),
    'x-dlq-offset': letter.source.offset,
  };
}

/** A dead letter as one JSON line (files, stderr): key and value in base64. */
export function encodeDeadLetterJson(letter: DeadLetter): Buffer {
  return jsonBuffer({
    reason: letter.reason,
    detail: letter.detail,
    source: positionJson(letter.source),
    keyBase64: letter.key === null ? null : letter.key.toString('base64'),
    valueBase64: letter.value === null ? null : letter.value.toString('base64'),
  });
}

/** `topic/partition/offset`: the default record id and the `x-source` dedupe key of results. */
export function positionKey(position: SourcePosition): string {
  return `${position.topic}/${position.partition}/${position.offset}`;
}

/** A header by name, case-insensitively; a Buffer value is read as UTF-8. */
export function headerText(headers: Readonly<Record<string, HeaderValue>>, name: string): string | undefined {
  const value = findHeader(headers, name);
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.toString('utf8');
}

/**
 * Builds a dead letter for a raw record: key and value copied and truncated to 64 KiB each, so a
 * dead letter always fits a Kafka message and never pins a large fetch buffer.
 */
export function deadLetterFor(raw: RawRecord, reason: RecordRejectReason, detail: string): DeadLetter {
  return {
    source: raw.position,
    reason,
    detail: capText(detail, DETAIL_CAP),
    key: truncateValue(raw.key),
    value: truncateValue(raw.value),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding

function decodeUnchecked(raw: RawRecord, limits: RecordLimits, copies: AlignedCopies): DecodeOutcome {
  const value = raw.value;
  if (value === null || value === undefined) {
    return reject(raw, 'E_RECORD_SCHEMA', 'value is null (a tombstone), expected a record');
  }
  const size = recordBytes(raw);
  if (size > limits.maxBytes) {
    return reject(
      raw,
      'E_RECORD_TOO_LARGE',
      `record has ${size} bytes, more than the limit of ${limits.maxBytes}`,
    );
  }
  const contentType = contentTypeOf(raw.headers);
  if (contentType === CONTENT_TYPE_JSON) return decodeJson(raw, value, limits);
  if (contentType === CONTENT_TYPE_FLOAT32 || contentType === CONTENT_TYPE_OCTET_STREAM) {
    return decodeFloat32(raw, value, limits, copies);
  }
  return reject(
    raw,
    'E_RECORD_CONTENT_TYPE',
    `unsupported content type ${JSON.stringify(capText(contentType, 64))} (expected ${CONTENT_TYPE_JSON} or ${CONTENT_TYPE_FLOAT32})`,
  );
}

function decodeJson(raw: RawRecord, value: Buffer, limits: RecordLimits): DecodeOutcome {
  if (!isUtf8(value)) return reject(raw, 'E_RECORD_JSON', 'value is not valid UTF-8');
  const parsed = parseJsonRecord(value, limits.dim);
  if (!parsed.ok) return reject(raw, parsed.reason, parsed.detail);
  const { x, y, id } = parsed;
  if (y !== undefined && !(Number.isInteger(y) && y >= 0 && y < limits.classes)) {
    return reject(raw, 'E_RECORD_LABEL', `label y=${y} is not an integer in [0, ${limits.classes})`);
  }
  const recordId = id ?? positionKey(raw.position);
  if (!ID_PATTERN.test(recordId)) return reject(raw, 'E_RECORD_ID', badIdDetail(recordId));
  return accept(raw, recordId, x, y === undefined ? undefined : y + 0);
}

function decodeFloat32(
  raw: RawRecord,
  value: Buffer,
  limits: RecordLimits,
  copies: AlignedCopies,
): DecodeOutcome {
  const expected = limits.dim * 4;
  if (value.length !== expected) {
    return reject(
      raw,
      'E_RECORD_DIMENSION',
      `float32 value has ${value.length} bytes, expected ${expected} (${limits.dim} little-endian float32)`,
    );
  }
  const x = float32View(value, limits.dim, copies);
  for (let i = 0; i < x.length; i++) {
    // x - x is 0 for finite values and NaN for NaN and ±Infinity (no call per value).
    const v = x[i] as number;
    if (v - v !== 0) return reject(raw, 'E_RECORD_NONFINITE', `x[${i}] is ${v}`);
  }
  let y: number | undefined;
  const label = findHeader(raw.headers, 'y');
  if (label !== undefined) {
    const text = headerLatin1(label);
    if (!LABEL_HEADER_PATTERN.test(text) || Number(text) >= limits.classes) {
      return reject(
        raw,
        'E_RECORD_LABEL',
        `label header y=${JSON.stringify(capText(text, 32))} is not an integer in [0, ${limits.classes})`,
      );
    }
    y = Number(text);
  }
  const idHeader = findHeader(raw.headers, 'id');
  let id: string;
  if (idHeader !== undefined) id = headerLatin1(idHeader);
  else if (raw.key !== null && raw.key !== undefined) id = raw.key.toString('latin1');
  else id = positionKey(raw.position);
  if (!ID_PATTERN.test(id)) return reject(raw, 'E_RECORD_ID', badIdDetail(id));
  return accept(raw, id, x, y);
}

/**
 * The value's float32s without a copy when the bytes sit at a 4-byte-aligned offset of their
 * buffer on a little-endian host (a view over the fetch buffer: it lives as long as the record);
 * otherwise an aligned copy (a Buffer slice at an odd byteOffset cannot back a Float32Array), cut
 * from `copies`.
 */
function float32View(value: Buffer, dim: number, copies: AlignedCopies): Float32Array {
  if (LITTLE_ENDIAN_HOST && value.byteOffset % 4 === 0) {
    return new Float32Array(value.buffer, value.byteOffset, dim);
  }
  if (LITTLE_ENDIAN_HOST) return copies.copy(value, dim);
  const x = new Float32Array(dim);
  for (let i = 0; i < dim; i++) x[i] = value.readFloatLE(i * 4);
  return x;
}

/** The copies of callers that do not own theirs: never reset, a fresh slab whenever one is full. */
const sharedCopies = new AlignedCopies();

function accept(raw: RawRecord, id: string, x: Float32Array, y: number | undefined): DecodeOutcome {
  const record: InputRecord =
    y === undefined ? { id, x, position: raw.position } : { id, x, y, position: raw.position };
  return { ok: true, record };
}

function reject(raw: RawRecord, reason: RecordRejectReason, detail: string): DecodeOutcome {
  return { ok: false, letter: deadLetterFor(raw, reason, detail) };
}

function truncateValue(value: Buffer | null | undefined): Buffer | null {
  if (value === null || value === undefined) return null;
  return Buffer.from(value.subarray(0, Math.min(value.length, DEAD_LETTER_VALUE_CAP)));
}

function recordBytes(raw: RawRecord): number {
  let size = (raw.value?.length ?? 0) + (raw.key?.length ?? 0);
  for (const name of Object.keys(raw.headers)) {
    const value = raw.headers[name];
    size += Buffer.byteLength(name, 'utf8');
    if (value !== undefined)
      size += typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value.length;
  }
  return size;
}

function findHeader(
  headers: Readonly<Record<string, HeaderValue>>,
  name: string,
): string | Buffer | undefined {
  if (Object.hasOwn(headers, name)) {
    const exact = headers[name];
    if (exact !== undefined) return exact;
  }
  for (const key of Object.keys(headers)) {
    if (key.length === name.length && key.toLowerCase() === name) {
      const value = headers[key];
      if (value !== undefined) return value;
    }
  }
  return undefined;
}

/** Header bytes 1:1 as characters: any non-ASCII byte becomes a character that fails the ASCII patterns. */
function headerLatin1(value: string | Buffer): string {
  return typeof value === 'string' ? value : value.toString('latin1');
}

function contentTypeOf(headers: Readonly<Record<string, HeaderValue>>): string {
  const value = findHeader(headers, 'content-type');
  if (value === undefined) return CONTENT_TYPE_JSON;
  const text = capText(headerLatin1(value), 256);
  const semicolon = text.indexOf(';');
  return (semicolon >= 0 ? text.slice(0, semicolon) : text).trim().toLowerCase();
}

function badIdDetail(id: string): string {
  return `id ${JSON.stringify(capText(id, 64))} (${id.length} characters) does not match ^[\\x20-\\x7e]{1,256}$`;
}

function safeMessage(error: unknown): string {
  try {
    return error instanceof Error ? error.message : String(error);
  } catch {
    return 'unprintable error';
  }
}

function positionJson(position: SourcePosition): { topic: string; partition: number; offset: string } {
  return { topic: position.topic, partition: position.partition, offset: position.offset };
}

function jsonBuffer(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}
