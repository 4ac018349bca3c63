/**
 * A labelled JSONL file for `supsupd evaluate`: the daemon's JSON records with a ground-truth task
 * field (and optionally a scoring-only class field) that the daemon must never see. Every line is
 * copied to a working file with those fields removed, line for line (a blank line stays blank), so
 * the file source's offsets (line numbers) name the same records in both files.
 */

import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { SupsupError } from '../errors.js';

export interface LabelledFileOptions {
  readonly input: string;
  /** Where the stripped copy goes. */
  readonly output: string;
  /** The record field holding the true task (a string or an integer). */
  readonly truthField: string;
  /** A scoring-only class field for records sent without `y` (removed like the truth field). */
  readonly labelField?: string;
}

/** The records of the file, in line order. */
export interface LabelledRecords {
  /** Line number (0-based, the file source's offset) of each record. */
  readonly offsets: readonly number[];
  /** Index into `trueTaskNames` of each record's true task. */
  readonly truth: readonly number[];
  /** True task names in the order they first appear. */
  readonly trueTaskNames: readonly string[];
  /** Each record's class: its `y`, else its label field, else −1. */
  readonly classes: readonly number[];
  /** Whether each record carries its label `y` (the daemon trains on it). */
  readonly labelled: readonly boolean[];
}

const NEWLINE = 0x0a;

/** The lines of a file split at `\n` only (as the file source splits them), without the newline. */
export async function* fileLines(file: string): AsyncGenerator<Buffer> {
  let rest: Buffer = Buffer.alloc(0);
  for await (const chunk of createReadStream(file)) {
    let data = rest.length === 0 ? (chunk as Buffer) : Buffer.concat([rest, chunk as Buffer]);
    let start = 0;
    for (let i = data.indexOf(NEWLINE); i !== -1; i = data.indexOf(NEWLINE, start)) {
      yield data.subarray(start, i);
      start = i + 1;
    }
    data = data.subarray(start);
    rest = Buffer.from(data);
  }
  if (rest.length > 0) yield rest;
}

function badInput(message: string, details: Record<string, unknown> = {}): SupsupError {
  return new SupsupError('E_BAD_ARGUMENT', message, { details });
}

/** Reads `input`, checks every record, writes the stripped copy to `output`; E_BAD_ARGUMENT on bad input. */
export async function stripLabelledFile(options: LabelledFileOptions): Promise<LabelledRecords> {
  const { input, truthField, labelField } = options;
  await assertReadable(input);
  const out = createWriteStream(options.output);
  const failed = once(out, 'error').then(([error]) => {
    throw error;
  });
  failed.catch(() => {});
  const names = new Map<string, number>();
  const records = {
    offsets: [] as number[],
    truth: [] as number[],
    classes: [] as number[],
    labelled: [] as boolean[],
  };
  let line = -1;
  try {
    for await (const bytes of fileLines(input)) {
      line++;
      const text = bytes.toString('utf8');
      if (text.trim() === '') {
        await write(out, '\n', failed);
        continue;
      }
      const record = parseRecord(text, input, line);
      const name = truthName(record[truthField], truthField, input, line);
      const label = labelField === undefined ? undefined : record[labelField];
      delete record[truthField];
      if (labelField !== undefined) delete record[labelField];
      if (!names.has(name)) names.set(name, names.size);
      records.offsets.push(line);
      records.truth.push(names.get(name) as number);
      records.classes.push(classOf(record.y, label, labelField, input, line));
      records.labelled.push(record.y !== undefined && record.y !== null);
      await write(out, `${JSON.stringify(record)}\n`, failed);
    }
  } finally {
    out.end();
    await Promise.race([once(out, 'finish'), failed]);
  }
  if (records.offsets.length === 0) throw badInput(`${input} holds no records`, { file: input });
  return { ...records, trueTaskNames: [...names.keys()] };
}

async function assertReadable(file: string): Promise<void> {
  try {
    const handle = await open(file, 'r');
    const isFile = (await handle.stat()).isFile();
    await handle.close();
    if (!isFile) throw new Error('not a regular file');
  } catch (error) {
    throw badInput(`cannot read ${file}: ${(error as Error).message}`, { file });
  }
}

/** Writes, waiting for the stream to drain; rejects with the stream's error (`failed`) instead of waiting for ever. */
async function write(out: NodeJS.WritableStream, text: string, failed: Promise<never>): Promise<void> {
  if (!out.write(text)) await Promise.race([once(out, 'drain'), failed]);
}

function parseRecord(text: string, file: string, line: number): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw badInput(`${file}:${line + 1}: not JSON (${(error as Error).message})`, { file, line: line + 1 });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw badInput(`${file}:${line + 1}: a record must be a JSON object`, { file, line: line + 1 });
  }
  return value as Record<string, unknown>;
}

function truthName(value: unknown, field: string, file: string, line: number): string {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isInteger(value)) return String(value);
  const what =
    value === undefined ? `has no truth field '${field}'` : `'${field}' must be a string or an integer`;
  throw badInput(`${file}:${line + 1}: the record ${what}`, { file, line: line + 1, field });
}

function classOf(y: unknown, label: unknown, field: string | undefined, file: string, line: number): number {
  if (typeof y === 'number' && Number.isInteger(y) && y >= 0) return y;
  if (label === undefined || label === null) return -1;
  if (typeof label === 'number' && Number.isInteger(label) && label >= 0) return label;
  throw badInput(`${file}:${line + 1}: '${field}' must be a non-negative integer`, { file, line: line + 1 });
}
