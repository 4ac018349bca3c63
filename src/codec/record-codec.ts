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
 * The JSON form is read by a small strict parser over the bytes that writes `x` straight into a
 * Float32Array (no intermediate array of numbers) and never builds objects from the input, so no
 * input can reach an object prototype. `null` for `y` or `id` means absent.
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
} from '../stream/types.js';

export { RECORD_REJECT_REASONS, type RecordRejectReason } from '../errors.js';

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
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
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
 * `{id, source: {topic, partition, offset}, task, newTask, confidence, entropy, prediction, maskVersion}`,
 * built as one template string: no intermediate objects, and the topic's JSON form is computed once
 * per topic rather than once per result.
 */
export function resultJson(result: ResultRecord): string {
  const { source } = result;
  return (
    `{"id":${JSON.stringify(result.id)},"source":{"topic":${topicJson(source.topic)},` +
    `"partition":${jsonNumber(source.partition)},"offset":${JSON.stringify(source.offset)}},` +
    `"task":${jsonNumber(result.task)},"newTask":${result.newTask ? 'true' : 'false'},` +
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
export function deadLetterFor(raw: RawRecord, reason: string, detail: string): DeadLetter {
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

/** Floats per slab: 256 KiB, about 80 LeNet records. */
const SLAB_FLOATS = 65_536;

/**
 * Aligned copies of float32 values carved one after the other out of slabs: one allocation per slab
 * instead of one zeroed ArrayBuffer per record (a quarter of the decoder's time went there). A
 * record's array keeps its slab alive.
 *
 * Without `reset`, a full slab is left to the records cut from it and a new one of 256 KiB is
 * taken. An owner that knows when every array handed out is dead calls `reset`: carving starts
 * again at the beginning of the newest slab, which is first made as large as everything copied
 * since the last reset. So a daemon that resets after each chunk copies into the same memory chunk
 * after chunk, instead of taking a fresh 256 KiB for every 80 records (each fresh ArrayBuffer
 * brings V8's next external-memory garbage collection closer, and its pages must be faulted in).
 */
export class AlignedCopies {
  private floats = new Float32Array(0);
  private bytes = new Uint8Array(0);
  private used = 0;
  /** Floats copied since the last reset. */
  private copied = 0;

  copy(value: Uint8Array, dim: number): Float32Array {
    if (this.used + dim > this.floats.length) this.newSlab(Math.max(SLAB_FLOATS, dim));
    this.bytes.set(value, this.used * 4);
    const x = this.floats.subarray(this.used, this.used + dim);
    this.used += dim;
    this.copied += dim;
    return x;
  }

  /** Carves from the start again; no array handed out before may be in use any more. */
  reset(): void {
    if (this.copied > this.floats.length) this.newSlab(this.copied);
    this.used = 0;
    this.copied = 0;
  }

  private newSlab(floats: number): void {
    this.floats = new Float32Array(floats);
    this.bytes = new Uint8Array(this.floats.buffer);
    this.used = 0;
  }
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

function capText(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
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

// ---------------------------------------------------------------------------------------------------------------
// Strict JSON record parser

/** scanNumberArray's second result: [values read, index of the first non-finite one or -1]. */
const scanned = new Int32Array(2);

/**
 * Reads a JSON array of numbers at buf[start] === '[' into x (values past x.length are counted, not
 * stored), with every variable local so the loop stays in registers. Returns the index after the
 * closing ']', or -1 at the first thing that is not a well-formed number, whitespace, ',' or ']'
 * (the caller's general parser then reads the array again and reports the problem). Numbers are
 * converted exactly as parseJsonRecord's parseNumber does: Clinger's fast path, else Number().
 */
function scanNumberArray(buf: Buffer, start: number, x: Float32Array, out: Int32Array): number {
  const n = buf.length;
  const dim = x.length;
  let i = skipSpace(buf, start + 1);
  let count = 0;
  let nonFinite = -1;
  if (i < n && buf[i] === C_RBRACK) {
    out[0] = 0;
    out[1] = -1;
    return i + 1;
  }
  for (;;) {
    const numberStart = i;
    let c = i < n ? (buf[i] as number) : -1;
    const negative = c === C_MINUS;
    if (negative) {
      i++;
      c = i < n ? (buf[i] as number) : -1;
    }
    let mantissa = 0;
    let digits = 0;
    let exp10 = 0;
    let slow = false;
    if (c === C_0) {
      i++;
    } else if (c >= C_1 && c <= C_9) {
      for (; i < n; i++) {
        const d = (buf[i] as number) - C_0;
        if (d < 0 || d > 9) break;
        if (digits < 15) {
          mantissa = mantissa * 10 + d;
          digits++;
        } else {
          slow = true;
        }
      }
    } else {
      return -1;
    }
    if (i < n && buf[i] === C_DOT) {
      i++;
      const first = i < n ? (buf[i] as number) : -1;
      if (first < C_0 || first > C_9) return -1;
      for (; i < n; i++) {
        const d = (buf[i] as number) - C_0;
        if (d < 0 || d > 9) break;
        if (mantissa === 0 && d === 0) {
          exp10--;
        } else if (digits < 15) {
          mantissa = mantissa * 10 + d;
          digits++;
          exp10--;
        } else {
          slow = true;
        }
      }
    }
    c = i < n ? (buf[i] as number) : -1;
    if (c === C_LOWER_E || c === C_UPPER_E) {
      i++;
      c = i < n ? (buf[i] as number) : -1;
      const expNegative = c === C_MINUS;
      if (c === C_PLUS || c === C_MINUS) {
        i++;
        c = i < n ? (buf[i] as number) : -1;
      }
      if (c < C_0 || c > C_9) return -1;
      let exponent = 0;
      for (; i < n; i++) {
        const d = (buf[i] as number) - C_0;
        if (d < 0 || d > 9) break;
        if (exponent < 100_000) exponent = exponent * 10 + d;
        else slow = true;
      }
      exp10 += expNegative ? -exponent : exponent;
    }
    let value: number;
    if (mantissa === 0 && !slow) value = 0;
    else if (!slow && exp10 >= -22 && exp10 <= 22)
      value = exp10 >= 0 ? mantissa * (POW10[exp10] as number) : mantissa / (POW10[-exp10] as number);
    else value = Math.abs(Number(buf.toString('latin1', numberStart, i)));
    if (count < dim) {
      x[count] = negative ? -value : value;
      if (nonFinite < 0 && !Number.isFinite(x[count])) nonFinite = count;
    }
    count++;
    i = skipSpace(buf, i);
    c = i < n ? (buf[i] as number) : -1;
    if (c === C_COMMA) {
      i = skipSpace(buf, i + 1);
      continue;
    }
    if (c === C_RBRACK) {
      out[0] = count;
      out[1] = nonFinite;
      return i + 1;
    }
    return -1;
  }
}

/** The index of the first byte at or after i that is not JSON whitespace. */
function skipSpace(buf: Buffer, i: number): number {
  const n = buf.length;
  while (i < n) {
    const c = buf[i];
    if (c !== C_SPACE && c !== C_LF && c !== C_CR && c !== C_TAB) break;
    i++;
  }
  return i;
}

type JsonParse =
  | { ok: true; x: Float32Array; y: number | undefined; id: string | undefined }
  | { ok: false; reason: RecordRejectReason; detail: string };

const OBJ = 1;
const ARR = 2;

const C_TAB = 0x09;
const C_LF = 0x0a;
const C_CR = 0x0d;
const C_SPACE = 0x20;
const C_QUOTE = 0x22;
const C_PLUS = 0x2b;
const C_COMMA = 0x2c;
const C_MINUS = 0x2d;
const C_DOT = 0x2e;
const C_0 = 0x30;
const C_1 = 0x31;
const C_9 = 0x39;
const C_COLON = 0x3a;
const C_UPPER_E = 0x45;
const C_LBRACK = 0x5b;
const C_BACKSLASH = 0x5c;
const C_RBRACK = 0x5d;
const C_LOWER_E = 0x65;
const C_LOWER_U = 0x75;
const C_LBRACE = 0x7b;
const C_RBRACE = 0x7d;

const POW10 = Array.from({ length: 23 }, (_, k) => 10 ** k);

/** JSON escape letter (byte after a backslash) → the character; undefined for invalid escapes. */
const SIMPLE_ESCAPES: readonly (string | undefined)[] = (() => {
  const table: (string | undefined)[] = new Array(128).fill(undefined);
  for (const [letter, char] of [
    ['"', '"'],
    ['\\', '\\'],
    ['/', '/'],
    ['b', '\b'],
    ['f', '\f'],
    ['n', '\n'],
    ['r', '\r'],
    ['t', '\t'],
  ]) {
    table[letter.charCodeAt(0)] = char;
  }
  return table;
})();

function isHexDigit(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

class JsonSyntaxError {
  constructor(readonly detail: string) {}
}

/**
 * One pass over UTF-8-valid bytes. Grammar errors return E_RECORD_JSON at once; everything else is
 * noted and decided after the whole value was parsed, so the reasons follow the documented order.
 * Iterative (explicit container stack), so nesting depth cannot overflow the call stack.
 */
function parseJsonRecord(buf: Buffer, dim: number): JsonParse {
  const n = buf.length;
  let i = 0;
  const stack: number[] = [];

  let rootIsObject = false;
  let memberKey = '';
  const seenMembers = new Set<string>();
  let protoKey: string | undefined;
  let schemaError: string | undefined;

  const x = new Float32Array(dim);
  let xSeen = false;
  let xOpen = false;
  let xCount = 0;
  let nonFinite = -1;
  let y: number | undefined;
  let id: string | undefined;

  const fail = (message: string): never => {
    throw new JsonSyntaxError(`${message} at byte ${i}`);
  };
  const schema = (message: string): void => {
    schemaError ??= message;
  };
  const skipWs = (): void => {
    while (i < n) {
      const c = buf[i];
      if (c === C_SPACE || c === C_LF || c === C_CR || c === C_TAB) i++;
      else break;
    }
  };

  /** Parses a string at buf[i] === '"'. Returns the decoded text if `decode`, else undefined. */
  const parseString = (decode: boolean): string | undefined => {
    i++;
    const start = i;
    let escaped = false;
    for (;;) {
      if (i >= n) fail('unterminated string');
      const c = buf[i];
      if (c === C_QUOTE) break;
      if (c < 0x20) fail('control character in string');
      if (c === C_BACKSLASH) {
        escaped = true;
        i++;
        if (i >= n) fail('unterminated escape');
        const e = buf[i];
        if (e === C_LOWER_U) {
          if (
            i + 4 >= n ||
            !isHexDigit(buf[i + 1]) ||
            !isHexDigit(buf[i + 2]) ||
            !isHexDigit(buf[i + 3]) ||
            !isHexDigit(buf[i + 4])
          ) {
            fail('bad \\u escape');
          }
          i += 5;
        } else if (SIMPLE_ESCAPES[e] !== undefined) {
          i++;
        } else {
          fail('bad escape');
        }
      } else {
        i++;
      }
    }
    const end = i;
    i++; // closing quote
    if (!decode) return undefined;
    if (!escaped) return buf.toString('utf8', start, end);
    let out = '';
    let run = start;
    let k = start;
    while (k < end) {
      if (buf[k] !== C_BACKSLASH) {
        k++;
        continue;
      }
      out += buf.toString('utf8', run, k);
      const e = buf[k + 1];
      if (e === C_LOWER_U) {
        out += String.fromCharCode(Number.parseInt(buf.toString('latin1', k + 2, k + 6), 16));
        k += 6;
      } else {
        out += SIMPLE_ESCAPES[e] ?? '';
        k += 2;
      }
      run = k;
    }
    return out + buf.toString('utf8', run, end);
  };

  /** Parses a number at buf[i]; returns its value if `want`, else 0. */
  const parseNumber = (want: boolean): number => {
    const start = i;
    let negative = false;
    if (buf[i] === C_MINUS) {
      negative = true;
      i++;
    }
    let mantissa = 0;
    let digits = 0;
    let exp10 = 0;
    let slow = false;
    const first = i < n ? buf[i] : -1;
    if (first === C_0) {
      i++;
    } else if (first >= C_1 && first <= C_9) {
      while (i < n && buf[i] >= C_0 && buf[i] <= C_9) {
        if (digits < 15) {
          mantissa = mantissa * 10 + (buf[i] - C_0);
          digits++;
        } else {
          slow = true;
        }
        i++;
      }
    } else {
      fail('invalid number');
    }
    if (i < n && buf[i] === C_DOT) {
      i++;
      if (!(i < n && buf[i] >= C_0 && buf[i] <= C_9)) fail('invalid number: digit expected after "."');
      while (i < n && buf[i] >= C_0 && buf[i] <= C_9) {
        const d = buf[i] - C_0;
        if (mantissa === 0 && d === 0) {
          exp10--;
        } else if (digits < 15) {
          mantissa = mantissa * 10 + d;
          digits++;
          exp10--;
        } else {
          slow = true;
        }
        i++;
      }
    }
    if (i < n && (buf[i] === C_LOWER_E || buf[i] === C_UPPER_E)) {
      i++;
      let expNegative = false;
      if (i < n && (buf[i] === C_PLUS || buf[i] === C_MINUS)) {
        expNegative = buf[i] === C_MINUS;
        i++;
      }
      if (!(i < n && buf[i] >= C_0 && buf[i] <= C_9)) fail('invalid number: digit expected in exponent');
      let exponent = 0;
      while (i < n && buf[i] >= C_0 && buf[i] <= C_9) {
        if (exponent < 100_000) exponent = exponent * 10 + (buf[i] - C_0);
        else slow = true;
        i++;
      }
      exp10 += expNegative ? -exponent : exponent;
    }
    if (!want) return 0;
    let value: number;
    if (mantissa === 0 && !slow) {
      value = 0;
    } else if (!slow && exp10 >= -22 && exp10 <= 22) {
      // Clinger's fast path: mantissa < 2^53 and 10^|e| are exact, so one IEEE operation rounds correctly.
      value = exp10 >= 0 ? mantissa * POW10[exp10] : mantissa / POW10[-exp10];
    } else {
      // Rare shapes (long mantissas, large exponents): the engine's correctly rounded conversion, as JSON.parse.
      return Number(buf.toString('latin1', start, i));
    }
    return negative ? -value : value;
  };

  const expectLiteral = (word: string): void => {
    for (let k = 0; k < word.length; k++) {
      if (buf[i + k] !== word.charCodeAt(k)) fail('invalid literal');
    }
    i += word.length;
  };

  /** At buf[i] (after '{' or ','): a member key, the ':' and the whitespace before the value. */
  const parseKey = (): void => {
    if (i >= n || buf[i] !== C_QUOTE) fail('expected a string key');
    const key = parseString(true) as string;
    if (FORBIDDEN_KEYS.has(key)) protoKey ??= key;
    if (stack.length === 1 && rootIsObject) {
      memberKey = key;
      if (key === 'x' || key === 'y' || key === 'id') {
        if (seenMembers.has(key)) schema(`duplicate key ${JSON.stringify(key)}`);
        seenMembers.add(key);
      } else {
        schema(`unknown key ${JSON.stringify(capText(key, 64))} (allowed: x, y, id)`);
      }
    }
    skipWs();
    if (i >= n || buf[i] !== C_COLON) fail('expected ":"');
    i++;
    skipWs();
  };

  /**
   * The fast path for `x`: at buf[i] === '[', reads `[number, number, …]` straight into x (see
   * scanNumberArray). On anything else it leaves i at the '[' and notes nothing: the general state
   * machine then reads the array and reports whatever is wrong exactly as before.
   */
  const fastX = (): boolean => {
    const end = scanNumberArray(buf, i, x, scanned);
    if (end < 0) return false;
    i = end;
    xSeen = true;
    xCount = scanned[0] as number;
    if (nonFinite < 0) nonFinite = scanned[1] as number;
    return true;
  };

  const SLOT_OTHER = 0;
  const SLOT_ROOT = 1;
  const SLOT_MEMBER = 2;
  const SLOT_X = 3;

  try {
    skipWs();
    outer: for (;;) {
      // A value starts at buf[i].
      if (i >= n) fail('unexpected end of input');
      const depth = stack.length;
      const slot =
        depth === 0
          ? SLOT_ROOT
          : depth === 1 && rootIsObject
            ? SLOT_MEMBER
            : depth === 2 && xOpen
              ? SLOT_X
              : SLOT_OTHER;
      const c = buf[i];
      if (c === C_LBRACE) {
        if (slot === SLOT_ROOT) rootIsObject = true;
        else if (slot === SLOT_MEMBER) wrongMemberType(memberKey);
        else if (slot === SLOT_X) schema(`x[${xCount++}] must be a number`);
        i++;
        stack.push(OBJ);
        skipWs();
        if (i < n && buf[i] === C_RBRACE) {
          i++;
          stack.pop();
        } else {
          parseKey();
          continue;
        }
      } else if (c === C_LBRACK && slot === SLOT_MEMBER && memberKey === 'x' && fastX()) {
        // x was a plain array of numbers, read in one tight loop; the value is complete.
      } else if (c === C_LBRACK) {
        if (slot === SLOT_ROOT) schema('record must be a JSON object, got an array');
        else if (slot === SLOT_MEMBER) {
          if (memberKey === 'x') {
            xSeen = true;
            xOpen = true;
            xCount = 0;
          } else wrongMemberType(memberKey);
        } else if (slot === SLOT_X) schema(`x[${xCount++}] must be a number`);
        i++;
        stack.push(ARR);
        skipWs();
        if (i < n && buf[i] === C_RBRACK) {
          i++;
          stack.pop();
          if (xOpen && stack.length === 1) xOpen = false;
        } else {
          continue;
        }
      } else if (c === C_QUOTE) {
        const wantId = slot === SLOT_MEMBER && memberKey === 'id';
        const text = parseString(wantId);
        if (slot === SLOT_ROOT) schema('record must be a JSON object, got a string');
        else if (wantId) id = text;
        else if (slot === SLOT_MEMBER) wrongMemberType(memberKey);
        else if (slot === SLOT_X) schema(`x[${xCount++}] must be a number`);
      } else if (c === C_MINUS || (c >= C_0 && c <= C_9)) {
        const wantY = slot === SLOT_MEMBER && memberKey === 'y';
        const value = parseNumber(wantY || slot === SLOT_X);
        if (slot === SLOT_ROOT) schema('record must be a JSON object, got a number');
        else if (wantY) y = value;
        else if (slot === SLOT_MEMBER) wrongMemberType(memberKey);
        else if (slot === SLOT_X) {
          if (xCount < dim) {
            x[xCount] = value;
            if (nonFinite < 0 && !Number.isFinite(x[xCount])) nonFinite = xCount;
          }
          xCount++;
        }
      } else if (c === 0x74 /* t */ || c === 0x66 /* f */ || c === 0x6e /* n */) {
        const isNull = c === 0x6e;
        expectLiteral(c === 0x74 ? 'true' : c === 0x66 ? 'false' : 'null');
        if (slot === SLOT_ROOT) schema('record must be a JSON object');
        else if (slot === SLOT_MEMBER) {
          if (isNull && (memberKey === 'y' || memberKey === 'id')) {
            if (memberKey === 'y') y = undefined;
            else id = undefined;
          } else {
            wrongMemberType(memberKey);
          }
        } else if (slot === SLOT_X) schema(`x[${xCount++}] must be a number`);
      } else {
        fail(`unexpected byte 0x${c.toString(16).padStart(2, '0')}`);
      }

      // After a value: close containers, or move to the next element/member.
      for (;;) {
        skipWs();
        if (stack.length === 0) {
          if (i !== n) fail('unexpected data after the JSON value');
          break outer;
        }
        if (i >= n) fail('unexpected end of input');
        const top = stack[stack.length - 1];
        const d = buf[i];
        if (d === C_COMMA) {
          i++;
          skipWs();
          if (top === OBJ) parseKey();
          continue outer;
        }
        if ((top === OBJ && d === C_RBRACE) || (top === ARR && d === C_RBRACK)) {
          i++;
          stack.pop();
          if (xOpen && stack.length === 1) xOpen = false;
          continue;
        }
        fail(top === OBJ ? 'expected "," or "}"' : 'expected "," or "]"');
      }
    }
  } catch (error) {
    if (error instanceof JsonSyntaxError)
      return { ok: false, reason: 'E_RECORD_JSON', detail: `invalid JSON: ${error.detail}` };
    throw error;
  }

  function wrongMemberType(key: string): void {
    if (key === 'x') schema('x must be an array of numbers');
    else if (key === 'y') schema('y must be an integer (or null)');
    else if (key === 'id') schema('id must be a string (or null)');
    // unknown keys were reported when the key was read
  }

  if (protoKey !== undefined) {
    return { ok: false, reason: 'E_RECORD_PROTO', detail: `forbidden key ${JSON.stringify(protoKey)}` };
  }
  if (schemaError !== undefined) return { ok: false, reason: 'E_RECORD_SCHEMA', detail: schemaError };
  if (!xSeen) return { ok: false, reason: 'E_RECORD_SCHEMA', detail: 'missing key "x"' };
  if (xCount !== dim) {
    return { ok: false, reason: 'E_RECORD_DIMENSION', detail: `x has ${xCount} values, expected ${dim}` };
  }
  if (nonFinite >= 0) {
    return {
      ok: false,
      reason: 'E_RECORD_NONFINITE',
      detail: `x[${nonFinite}] is not finite as float32 (${x[nonFinite]})`,
    };
  }
  return { ok: true, x, y, id };
}
