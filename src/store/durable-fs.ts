import { open } from 'node:fs/promises';

/**
 * Writes `bytes` to `path` and fsyncs the file before returning. `exclusive`: fail if the file exists
 * (a fresh file in a temp directory) instead of replacing its content.
 */
export async function writeDurably(
  path: string,
  bytes: Uint8Array,
  options: { exclusive?: boolean } = {},
): Promise<void> {
  const handle = await open(path, options.exclusive === true ? 'wx' : 'w', 0o644);
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsyncs a directory, so that entries created, renamed or removed in it survive a crash. */
export async function fsyncDir(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
