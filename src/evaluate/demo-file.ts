/**
 * The built-in demo stream as a labelled JSONL file for `supsupd evaluate --demo`: one daemon JSON
 * record per line (`id`, `x`, and `y` where the demo labels the record), plus the scoring-only fields
 * `task` (the true task, from the `x-true-task` header) and `class` (every record's class, from
 * `x-true-class`, so the records sent without a label can be scored too).
 */

import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { float32Text } from '../codec/float-text.js';
import { headerText } from '../codec/record-codec.js';
import { type DemoStreamConfig, demoStream } from '../daemon/demo-stream.js';

export const DEMO_TRUTH_FIELD = 'task';
export const DEMO_CLASS_FIELD = 'class';

/** Writes the stream to `file`; returns the number of records. */
export async function writeDemoFile(file: string, stream: DemoStreamConfig): Promise<number> {
  const out = createWriteStream(file);
  const failed = once(out, 'error').then(([error]) => {
    throw error;
  });
  failed.catch(() => {});
  let count = 0;
  try {
    for (const raw of demoStream(stream)) {
      const value = raw.value ?? Buffer.alloc(0);
      const x: string[] = [];
      for (let j = 0; j + 4 <= value.length; j += 4) x.push(float32Text(value.readFloatLE(j)));
      const id = headerText(raw.headers, 'id') ?? `demo-${raw.position.offset}`;
      const y = headerText(raw.headers, 'y');
      const fields = [
        `"id":${JSON.stringify(id)}`,
        `"x":[${x.join(',')}]`,
        ...(y === undefined ? [] : [`"y":${Number(y)}`]),
        `"${DEMO_TRUTH_FIELD}":${Number(headerText(raw.headers, 'x-true-task'))}`,
        `"${DEMO_CLASS_FIELD}":${Number(headerText(raw.headers, 'x-true-class'))}`,
      ];
      if (!out.write(`{${fields.join(',')}}\n`)) await Promise.race([once(out, 'drain'), failed]);
      count++;
    }
  } finally {
    out.end();
  }
  await Promise.race([once(out, 'finish'), failed]);
  return count;
}
