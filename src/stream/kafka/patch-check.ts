/**
 * The daemon runs kafkajs 2.2.4 with the patches in patches/ (applied by patch-package from
 * `npm ci`'s postinstall; see docs/adr/0009-kafka-client.md). `npm ci --ignore-scripts`, a copied
 * node_modules or a reinstall of kafkajs alone gives the unpatched build, which works but encodes
 * at a third of the speed and spins a 1 ms timer per idle connection. Each patch adds a marker file
 * under node_modules/kafkajs/supsupd-patches/ (patch-package applies a patch file whole or not at
 * all), so a missing marker means a missing patch, and the first Kafka client refuses to start.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { SupsupError } from '../../errors.js';

/** The patches the daemon needs, by the sequence and name of their files (patches/kafkajs+2.2.4+NNN+name.patch). */
export const KAFKAJS_PATCHES: readonly string[] = ['001-encoding', '002-request-queue-idle-timer'];

/** The directory of the kafkajs package this process loads. */
export function kafkajsRoot(): string {
  return dirname(createRequire(import.meta.url).resolve('kafkajs/package.json'));
}

/** The patches whose marker is missing in the kafkajs package at `root`. */
export function missingKafkajsPatches(root: string): string[] {
  return KAFKAJS_PATCHES.filter((name) => !existsSync(join(root, 'supsupd-patches', name)));
}

let verified = false;

/** Throws E_DEPENDENCY unless every patch is applied to the kafkajs at `root` (checked once per process by default). */
export function assertKafkajsPatched(root?: string): void {
  if (root === undefined && verified) return;
  const dir = root ?? kafkajsRoot();
  const missing = missingKafkajsPatches(dir);
  if (missing.length > 0) {
    throw new SupsupError(
      'E_DEPENDENCY',
      `kafkajs at ${dir} is not patched (missing: ${missing.join(', ')}): install with \`npm ci\` ` +
        '(not --ignore-scripts), or run `npx patch-package` in the project directory',
      { details: { missing, dir } },
    );
  }
  if (root === undefined) verified = true;
}
