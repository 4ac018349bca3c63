/**
 * The integrity job: every task of the registry has a stored mask whose CRC-32 is the registry's checksum and that
 * decodes (src/codec/mask-codec.ts: magic, format, its own CRC) as a mask of that task for the registry's network.
 * Any bad mask makes the run fail with E_STORE_CORRUPT, logged at error with the task ids.
 */

import { decodeMask } from '../../codec/mask-codec.js';
import { errorMessage, SupsupError } from '../../errors.js';
import type { MaskStore } from '../../store/types.js';
import type { JobContext, JobDefinition } from '../scheduler.js';
import { readStoreMasks } from './masks.js';

export interface IntegrityReport {
  readonly checked: number;
  readonly bad: readonly { readonly task: number; readonly problem: string }[];
}

/** Checks every mask of `store`; see the module comment. Store errors are thrown. */
export async function checkIntegrity(store: MaskStore, signal: AbortSignal): Promise<IntegrityReport> {
  const read = await readStoreMasks(store, signal);
  if (read === null) return { checked: 0, bad: [] };
  const { registry } = read.state;
  const bad: { task: number; problem: string }[] = [];
  for (const meta of registry.tasks) {
    const known = read.problems.get(meta.task);
    const mask = read.masks.get(meta.task);
    if (known !== undefined || mask === undefined) {
      bad.push({ task: meta.task, problem: known ?? 'mask not read' });
      continue;
    }
    try {
      const decoded = decodeMask(mask, { archKey: registry.archKey });
      if (decoded.meta.taskId !== meta.task) {
        bad.push({ task: meta.task, problem: `the mask is labelled task ${decoded.meta.taskId}` });
      } else if (decoded.meta.seed !== registry.seed) {
        bad.push({
          task: meta.task,
          problem: `the mask is for seed ${decoded.meta.seed}, the registry's is ${registry.seed}`,
        });
      }
    } catch (error) {
      bad.push({ task: meta.task, problem: errorMessage(error) });
    }
  }
  return { checked: registry.tasks.length, bad };
}

export function integrityJob(store: MaskStore, cron: string): JobDefinition {
  return {
    name: 'integrity',
    cron,
    async run(context: JobContext): Promise<string> {
      const report = await checkIntegrity(store, context.signal);
      if (report.bad.length > 0) {
        const tasks = report.bad.map((entry) => entry.task);
        context.logger.error('mask integrity check failed', { tasks, problems: report.bad });
        throw new SupsupError(
          'E_STORE_CORRUPT',
          `${report.bad.length} of ${report.checked} masks failed the integrity check: tasks ${tasks.join(', ')}`,
          { details: { tasks, problems: report.bad } },
        );
      }
      return `checked ${report.checked} masks`;
    },
  };
}
