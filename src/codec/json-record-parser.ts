/**
 * The strict JSON record parser: one pass over UTF-8-valid bytes of `{"x": number[dim], "y"?: int,
 * "id"?: string}`. Grammar errors return E_RECORD_JSON at once; everything else is noted and decided
 * after the whole value was parsed, so the reasons follow the order documented in record-codec.ts.
 * Iterative (an explicit container stack), so nesting depth cannot overflow the call stack; `x` is
 * written straight into a Float32Array and no object is ever built from the input.
 */
import type { RecordRejectReason } from '../errors.js';
import { capText } from './cap-text.js';
import { JsonCursor, JsonSyntaxError, scanNumberArray, scanned } from './json-cursor.js';

export type JsonParse =
  | { ok: true; x: Float32Array; y: number | undefined; id: string | undefined }
  | { ok: false; reason: RecordRejectReason; detail: string };

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

// The bytes this module tests once per value, defined here rather than imported from json-cursor.ts:
// an imported constant is a binding load per test (a getter call under tsx), and the general path
// (any x that is not a plain array of numbers) measured 2.8 times slower with them imported.
const C_0 = 0x30;
const C_9 = 0x39;
const C_COLON = 0x3a;
const C_COMMA = 0x2c;
const C_LBRACE = 0x7b;
const C_LBRACK = 0x5b;
const C_MINUS = 0x2d;
const C_QUOTE = 0x22;
const C_RBRACE = 0x7d;
const C_RBRACK = 0x5d;

const OBJ = 1;
const ARR = 2;

/** Where a value sits: the root, a member of the root object, an element of `x`, or anywhere else. */
const SLOT_OTHER = 0;
const SLOT_ROOT = 1;
const SLOT_MEMBER = 2;
const SLOT_X = 3;

/** Parses one record value; never throws for any input. */
export function parseJsonRecord(buf: Buffer, dim: number): JsonParse {
  return new JsonRecordParser(buf, dim).parse();
}

class JsonRecordParser extends JsonCursor {
  private readonly dim: number;
  private readonly stack: number[] = [];

  private rootIsObject = false;
  private memberKey = '';
  private readonly seenMembers = new Set<string>();
  private protoKey: string | undefined;
  private schemaError: string | undefined;

  private readonly x: Float32Array;
  private xSeen = false;
  private xOpen = false;
  private xCount = 0;
  private nonFinite = -1;
  private y: number | undefined;
  private id: string | undefined;

  constructor(buf: Buffer, dim: number) {
    super(buf);
    this.dim = dim;
    this.x = new Float32Array(dim);
  }

  parse(): JsonParse {
    try {
      this.skipWs();
      for (;;) {
        // A value starts at buf[i]; a container that opened has its first member or element next.
        if (this.readValue()) continue;
        if (!this.closeContainers()) break;
      }
    } catch (error) {
      if (error instanceof JsonSyntaxError)
        return { ok: false, reason: 'E_RECORD_JSON', detail: `invalid JSON: ${error.detail}` };
      throw error;
    }
    return this.outcome();
  }

  /** The first problem in the documented order, or the record. */
  private outcome(): JsonParse {
    const { x, dim, xCount, nonFinite } = this;
    if (this.protoKey !== undefined) {
      return {
        ok: false,
        reason: 'E_RECORD_PROTO',
        detail: `forbidden key ${JSON.stringify(this.protoKey)}`,
      };
    }
    if (this.schemaError !== undefined)
      return { ok: false, reason: 'E_RECORD_SCHEMA', detail: this.schemaError };
    if (!this.xSeen) return { ok: false, reason: 'E_RECORD_SCHEMA', detail: 'missing key "x"' };
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
    return { ok: true, x, y: this.y, id: this.id };
  }

  private schema(message: string): void {
    this.schemaError ??= message;
  }

  private slot(): number {
    const depth = this.stack.length;
    if (depth === 0) return SLOT_ROOT;
    if (depth === 1 && this.rootIsObject) return SLOT_MEMBER;
    return depth === 2 && this.xOpen ? SLOT_X : SLOT_OTHER;
  }

  /**
   * Reads the value at buf[i]. True if it opened a non-empty container (its first member or element
   * comes next), false if the value is complete.
   */
  private readValue(): boolean {
    if (this.i >= this.n) this.fail('unexpected end of input');
    const slot = this.slot();
    const c = this.buf[this.i];
    if (c === C_LBRACE) return this.openObject(slot);
    if (c === C_LBRACK) {
      // x as a plain array of numbers is read in one tight loop; the value is then complete.
      if (slot === SLOT_MEMBER && this.memberKey === 'x' && this.fastX()) return false;
      return this.openArray(slot);
    }
    if (c === C_QUOTE) this.readString(slot);
    else if (c === C_MINUS || (c >= C_0 && c <= C_9)) this.readNumber(slot);
    else if (c === 0x74 /* t */ || c === 0x66 /* f */ || c === 0x6e /* n */) this.readLiteral(slot, c);
    else this.fail(`unexpected byte 0x${c.toString(16).padStart(2, '0')}`);
    return false;
  }

  private openObject(slot: number): boolean {
    if (slot === SLOT_ROOT) this.rootIsObject = true;
    else if (slot === SLOT_MEMBER) this.wrongMemberType(this.memberKey);
    else if (slot === SLOT_X) this.schema(`x[${this.xCount++}] must be a number`);
    this.i++;
    this.stack.push(OBJ);
    this.skipWs();
    if (this.i < this.n && this.buf[this.i] === C_RBRACE) {
      this.i++;
      this.stack.pop();
      return false;
    }
    this.parseKey();
    return true;
  }

  private openArray(slot: number): boolean {
    if (slot === SLOT_ROOT) this.schema('record must be a JSON object, got an array');
    else if (slot === SLOT_MEMBER) {
      if (this.memberKey === 'x') {
        this.xSeen = true;
        this.xOpen = true;
        this.xCount = 0;
      } else this.wrongMemberType(this.memberKey);
    } else if (slot === SLOT_X) this.schema(`x[${this.xCount++}] must be a number`);
    this.i++;
    this.stack.push(ARR);
    this.skipWs();
    if (this.i < this.n && this.buf[this.i] === C_RBRACK) {
      this.i++;
      this.stack.pop();
      if (this.xOpen && this.stack.length === 1) this.xOpen = false;
      return false;
    }
    return true;
  }

  private readString(slot: number): void {
    const wantId = slot === SLOT_MEMBER && this.memberKey === 'id';
    const text = this.parseString(wantId);
    if (slot === SLOT_ROOT) this.schema('record must be a JSON object, got a string');
    else if (wantId) this.id = text;
    else if (slot === SLOT_MEMBER) this.wrongMemberType(this.memberKey);
    else if (slot === SLOT_X) this.schema(`x[${this.xCount++}] must be a number`);
  }

  private readNumber(slot: number): void {
    const wantY = slot === SLOT_MEMBER && this.memberKey === 'y';
    const value = this.parseNumber(wantY || slot === SLOT_X);
    if (slot === SLOT_ROOT) this.schema('record must be a JSON object, got a number');
    else if (wantY) this.y = value;
    else if (slot === SLOT_MEMBER) this.wrongMemberType(this.memberKey);
    else if (slot === SLOT_X) {
      const { x } = this;
      if (this.xCount < this.dim) {
        x[this.xCount] = value;
        if (this.nonFinite < 0 && !Number.isFinite(x[this.xCount])) this.nonFinite = this.xCount;
      }
      this.xCount++;
    }
  }

  private readLiteral(slot: number, c: number): void {
    const isNull = c === 0x6e;
    this.expectLiteral(c === 0x74 ? 'true' : c === 0x66 ? 'false' : 'null');
    if (slot === SLOT_ROOT) this.schema('record must be a JSON object');
    else if (slot === SLOT_MEMBER) {
      const key = this.memberKey;
      if (isNull && (key === 'y' || key === 'id')) {
        if (key === 'y') this.y = undefined;
        else this.id = undefined;
      } else {
        this.wrongMemberType(key);
      }
    } else if (slot === SLOT_X) this.schema(`x[${this.xCount++}] must be a number`);
  }

  /**
   * After a value: closes the containers it ends. True when the next member or element starts at
   * buf[i], false when the root value is complete.
   */
  private closeContainers(): boolean {
    const { buf, n, stack } = this;
    for (;;) {
      this.skipWs();
      if (stack.length === 0) {
        if (this.i !== n) this.fail('unexpected data after the JSON value');
        return false;
      }
      if (this.i >= n) this.fail('unexpected end of input');
      const top = stack[stack.length - 1];
      const d = buf[this.i];
      if (d === C_COMMA) {
        this.i++;
        this.skipWs();
        if (top === OBJ) this.parseKey();
        return true;
      }
      if ((top === OBJ && d === C_RBRACE) || (top === ARR && d === C_RBRACK)) {
        this.i++;
        stack.pop();
        if (this.xOpen && stack.length === 1) this.xOpen = false;
        continue;
      }
      this.fail(top === OBJ ? 'expected "," or "}"' : 'expected "," or "]"');
    }
  }

  /** At buf[i] (after '{' or ','): a member key, the ':' and the whitespace before the value. */
  private parseKey(): void {
    const { buf, n } = this;
    if (this.i >= n || buf[this.i] !== C_QUOTE) this.fail('expected a string key');
    const key = this.parseString(true) ?? '';
    if (FORBIDDEN_KEYS.has(key)) this.protoKey ??= key;
    if (this.stack.length === 1 && this.rootIsObject) this.noteMember(key);
    this.skipWs();
    if (this.i >= n || buf[this.i] !== C_COLON) this.fail('expected ":"');
    this.i++;
    this.skipWs();
  }

  private noteMember(key: string): void {
    this.memberKey = key;
    if (key === 'x' || key === 'y' || key === 'id') {
      if (this.seenMembers.has(key)) this.schema(`duplicate key ${JSON.stringify(key)}`);
      this.seenMembers.add(key);
    } else {
      this.schema(`unknown key ${JSON.stringify(capText(key, 64))} (allowed: x, y, id)`);
    }
  }

  /**
   * The fast path for `x`: at buf[i] === '[', reads `[number, number, …]` straight into x (see
   * scanNumberArray). On anything else it leaves i at the '[' and notes nothing: the general state
   * machine then reads the array and reports whatever is wrong exactly as before.
   */
  private fastX(): boolean {
    const end = scanNumberArray(this.buf, this.i, this.x, scanned);
    if (end < 0) return false;
    this.i = end;
    this.xSeen = true;
    this.xCount = scanned[0] as number;
    if (this.nonFinite < 0) this.nonFinite = scanned[1] as number;
    return true;
  }

  private wrongMemberType(key: string): void {
    if (key === 'x') this.schema('x must be an array of numbers');
    else if (key === 'y') this.schema('y must be an integer (or null)');
    else if (key === 'id') this.schema('id must be a string (or null)');
    // unknown keys were reported when the key was read
  }
}
