import { SupsupError } from '../errors.js';

/**
 * Collects every problem in a set of command-line options so that one error reports them all.
 * Each reader returns a usable placeholder after recording a problem; call `finish()` before use.
 */
export class OptionReader {
  private readonly problems: string[] = [];
  private readonly raw: Readonly<Record<string, unknown>>;

  constructor(raw: Readonly<Record<string, unknown>>) {
    this.raw = raw;
  }

  string(name: string, fallback: string): string {
    const value = this.raw[name];
    return typeof value === 'string' ? value : fallback;
  }

  choice<T extends string>(name: string, choices: readonly T[], fallback: T): T {
    const value = this.string(name, fallback);
    if ((choices as readonly string[]).includes(value)) return value as T;
    this.problems.push(`--${flag(name)} must be one of ${choices.join(', ')} (got '${value}')`);
    return fallback;
  }

  integer(name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const value = this.raw[name];
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      this.problems.push(`--${flag(name)} must be an integer in [${min}, ${max}] (got '${String(value)}')`);
      return fallback;
    }
    return n;
  }

  optionalInteger(name: string, min: number): number | undefined {
    return this.raw[name] === undefined ? undefined : this.integer(name, min, min);
  }

  number(name: string, fallback: number | undefined, min: number, max: number): number | undefined {
    const value = this.raw[name];
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) {
      this.problems.push(`--${flag(name)} must be a number in [${min}, ${max}] (got '${String(value)}')`);
      return fallback;
    }
    return n;
  }

  integerList(name: string): number[] | undefined {
    const value = this.raw[name];
    if (value === undefined) return undefined;
    const parts = String(value).split(',');
    const out = parts.map(Number);
    if (out.length === 0 || out.some((n) => !Number.isInteger(n) || n < 1)) {
      this.problems.push(
        `--${flag(name)} must be a comma-separated list of positive integers (got '${String(value)}')`,
      );
      return undefined;
    }
    return out;
  }

  flag(name: string): boolean {
    return this.raw[name] === true;
  }

  problem(text: string): void {
    this.problems.push(text);
  }

  /** Records a problem raised by a validator (a SupsupError) instead of stopping at it. */
  attempt<T>(fn: () => T, fallback: T): T {
    try {
      return fn();
    } catch (error) {
      if (error instanceof SupsupError) {
        const problems = error.details.problems;
        if (Array.isArray(problems)) this.problems.push(...problems.map(String));
        else this.problems.push(error.message);
        return fallback;
      }
      throw error;
    }
  }

  finish(command: string): void {
    if (this.problems.length === 0) return;
    throw new SupsupError(
      'E_BAD_ARGUMENT',
      `${command}: ${this.problems.length} problem(s) with the options:\n  - ${this.problems.join('\n  - ')}`,
      { details: { problems: [...this.problems] } },
    );
  }
}

function flag(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
