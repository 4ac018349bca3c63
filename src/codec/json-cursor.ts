/**
 * The lexical layer of the strict record parser: a position in UTF-8-valid JSON bytes and the scalar
 * grammar read from it (strings, numbers, literals), and the fast path that reads a plain array of
 * numbers straight into a Float32Array. A grammar error throws JsonSyntaxError with the byte it was
 * found at; the record parser (json-record-parser.ts) turns it into E_RECORD_JSON.
 *
 * The byte constants live in this module with the loops that test them: a constant imported from
 * another module is a binding load per test in the hot loops (and a getter call under tsx), which
 * measured 2.5 to 6 times slower decoding.
 */
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
const C_UPPER_E = 0x45;
const C_BACKSLASH = 0x5c;
const C_RBRACK = 0x5d;
const C_LOWER_E = 0x65;
const C_LOWER_U = 0x75;

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

/** scanNumberArray's second result: [values read, index of the first non-finite one or -1]. */
export const scanned = new Int32Array(2);

/**
 * Reads a JSON array of numbers at buf[start] === '[' into x (values past x.length are counted, not
 * stored), with every variable local so the loop stays in registers. Returns the index after the
 * closing ']', or -1 at the first thing that is not a well-formed number, whitespace, ',' or ']'
 * (the caller's general parser then reads the array again and reports the problem). Numbers are
 * converted exactly as JsonCursor.parseNumber does (see numberValue): Clinger's fast path, else Number().
 */
export function scanNumberArray(buf: Buffer, start: number, x: Float32Array, out: Int32Array): number {
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

export class JsonSyntaxError {
  constructor(readonly detail: string) {}
}

export class JsonCursor {
  protected readonly buf: Buffer;
  protected readonly n: number;
  /** The next byte to read. */
  protected i = 0;

  constructor(buf: Buffer) {
    this.buf = buf;
    this.n = buf.length;
  }

  protected fail(message: string): never {
    throw new JsonSyntaxError(`${message} at byte ${this.i}`);
  }

  protected skipWs(): void {
    const { buf, n } = this;
    while (this.i < n) {
      const c = buf[this.i];
      if (c === C_SPACE || c === C_LF || c === C_CR || c === C_TAB) this.i++;
      else break;
    }
  }

  /** Parses a string at buf[i] === '"'. Returns the decoded text if `decode`, else undefined. */
  protected parseString(decode: boolean): string | undefined {
    const start = this.i + 1;
    const { end, escaped } = this.scanString(start);
    this.i = end + 1; // past the closing quote
    if (!decode) return undefined;
    return escaped ? this.unescape(start, end) : this.buf.toString('utf8', start, end);
  }

  /** Checks a string's bytes from `start` to its closing quote; the quote's index, and whether it has escapes. */
  private scanString(start: number): { end: number; escaped: boolean } {
    const { buf, n } = this;
    this.i = start;
    let escaped = false;
    for (;;) {
      if (this.i >= n) this.fail('unterminated string');
      const c = buf[this.i];
      if (c === C_QUOTE) return { end: this.i, escaped };
      if (c < 0x20) this.fail('control character in string');
      if (c === C_BACKSLASH) {
        escaped = true;
        this.scanEscape();
      } else {
        this.i++;
      }
    }
  }

  /** At buf[i] === '\\': checks the escape and moves past it. */
  private scanEscape(): void {
    const { buf, n } = this;
    this.i++;
    if (this.i >= n) this.fail('unterminated escape');
    const e = buf[this.i];
    const i = this.i;
    if (e === C_LOWER_U) {
      if (
        i + 4 >= n ||
        !isHexDigit(buf[i + 1]) ||
        !isHexDigit(buf[i + 2]) ||
        !isHexDigit(buf[i + 3]) ||
        !isHexDigit(buf[i + 4])
      ) {
        this.fail('bad \\u escape');
      }
      this.i += 5;
    } else if (SIMPLE_ESCAPES[e] !== undefined) {
      this.i++;
    } else {
      this.fail('bad escape');
    }
  }

  /** The text of checked string bytes [start, end) with their escapes decoded. */
  private unescape(start: number, end: number): string {
    const { buf } = this;
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
  }

  /** Parses a number at buf[i]; returns its value if `want`, else 0. */
  protected parseNumber(want: boolean): number {
    const { buf, n } = this;
    const start = this.i;
    let i = this.i;
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
      this.i = i;
      this.fail('invalid number');
    }
    if (i < n && buf[i] === C_DOT) {
      i++;
      if (!(i < n && buf[i] >= C_0 && buf[i] <= C_9)) {
        this.i = i;
        this.fail('invalid number: digit expected after "."');
      }
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
      if (!(i < n && buf[i] >= C_0 && buf[i] <= C_9)) {
        this.i = i;
        this.fail('invalid number: digit expected in exponent');
      }
      let exponent = 0;
      while (i < n && buf[i] >= C_0 && buf[i] <= C_9) {
        if (exponent < 100_000) exponent = exponent * 10 + (buf[i] - C_0);
        else slow = true;
        i++;
      }
      exp10 += expNegative ? -exponent : exponent;
    }
    this.i = i;
    if (!want) return 0;
    return numberValue(negative, mantissa, exp10, slow, buf, start, i);
  }

  protected expectLiteral(word: string): void {
    for (let k = 0; k < word.length; k++) {
      if (this.buf[this.i + k] !== word.charCodeAt(k)) this.fail('invalid literal');
    }
    this.i += word.length;
  }
}

/** The value of a scanned number: its decimal mantissa (up to 15 digits) and exponent, or its text when `slow`. */
function numberValue(
  negative: boolean,
  mantissa: number,
  exp10: number,
  slow: boolean,
  buf: Buffer,
  start: number,
  end: number,
): number {
  let value: number;
  if (mantissa === 0 && !slow) {
    value = 0;
  } else if (!slow && exp10 >= -22 && exp10 <= 22) {
    // Clinger's fast path: mantissa < 2^53 and 10^|e| are exact, so one IEEE operation rounds correctly.
    value = exp10 >= 0 ? mantissa * POW10[exp10] : mantissa / POW10[-exp10];
  } else {
    // Rare shapes (long mantissas, large exponents): the engine's correctly rounded conversion, as JSON.parse.
    return Number(buf.toString('latin1', start, end));
  }
  return negative ? -value : value;
}
