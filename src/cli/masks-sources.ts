/**
 * Where the `supsupd masks` commands read and write: the store of the daemon's own configuration (`--config` /
 * SUPSUPD_* as for `supsupd run`), with `--dir` (a file store) or `--namespace` (a Redis namespace on the
 * configured server) in its place, or an archive file.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  decodeMaskArchive,
  encodeMaskArchive,
  type MaskArchive,
  readStoreArchive,
  type StoreArchive,
} from '../archive/index.js';
import { type DaemonConfig, loadConfig } from '../config.js';
import { standardiseConfig } from '../daemon/components.js';
import { SupsupError } from '../errors.js';
import { type Architecture, makeArchitecture } from '../model/network/index.js';
import { openStore } from '../store/index.js';
import type { MaskStore } from '../store/types.js';

/** `--config`, `--dir`, `--namespace` as commander hands them over. */
export interface StoreFlags {
  readonly config?: unknown;
  readonly dir?: unknown;
  readonly namespace?: unknown;
}

/**
 * The configuration with the store the flags name. Source and sink are set to stdin/stdout: these commands use
 * neither, so a configuration without them (or with a Kafka source) serves as well.
 */
export function masksConfig(flags: StoreFlags): DaemonConfig {
  const overrides: Record<string, unknown> = { source: { kind: 'stdin' }, sink: { kind: 'stdout' } };
  if (typeof flags.dir === 'string' && typeof flags.namespace === 'string') {
    throw new SupsupError('E_BAD_ARGUMENT', 'give --dir (a file store) or --namespace (Redis), not both');
  }
  if (typeof flags.dir === 'string') overrides.store = { kind: 'file', dir: flags.dir };
  if (typeof flags.namespace === 'string') overrides.store = { kind: 'redis', namespace: flags.namespace };
  return loadConfig({ path: typeof flags.config === 'string' ? flags.config : undefined, overrides });
}

export function configuredArch(config: DaemonConfig): Architecture {
  const model = config.model;
  return makeArchitecture({
    arch: model.hidden === undefined ? (model.arch ?? 'lenet') : undefined,
    hidden: model.hidden,
    inputs: model.inputs,
    outputs: model.outputs,
    realClasses: model.realClasses,
  });
}

export function describeStore(config: DaemonConfig): string {
  const store = config.store;
  if (store.kind === 'file') return `file store ${path.resolve(store.dir)}`;
  if (store.kind === 'redis') return `redis namespace ${store.namespace}`;
  return 'memory store';
}

/**
 * Opens the configured store to read it. A file store directory must already hold a store (opening one would
 * create it); a memory store is always empty, so it is refused.
 */
export async function openForRead(config: DaemonConfig): Promise<MaskStore> {
  const store = config.store;
  if (store.kind === 'memory') {
    throw new SupsupError(
      'E_BAD_ARGUMENT',
      'a memory store holds nothing outside its daemon; give --dir or --namespace',
    );
  }
  if (store.kind === 'file' && !existsSync(path.join(store.dir, 'registry.json'))) {
    throw new SupsupError('E_BAD_ARGUMENT', `no file store at ${path.resolve(store.dir)} (no registry.json)`);
  }
  const opened = openStore(store);
  await opened.open();
  return opened;
}

/** The configured store read out whole (see readStoreArchive), closed after. */
export async function readConfiguredStore(config: DaemonConfig): Promise<StoreArchive> {
  const store = await openForRead(config);
  try {
    return await readStoreArchive(store, {
      source: describeStore(config),
      arch: configuredArch(config),
      seed: config.model.seed,
      standardise: standardiseConfig(config.model.input),
      now: new Date().toISOString(),
    });
  } finally {
    await store.close();
  }
}

/** An archive file, decoded and checked; E_BAD_ARGUMENT when it cannot be read, E_ARCHIVE when it is bad. */
export function readArchiveFile(file: string): MaskArchive {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw new SupsupError('E_BAD_ARGUMENT', `cannot read the archive ${file}: ${(error as Error).message}`);
  }
  return decodeMaskArchive(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

/** Writes an archive to `file` whole or not at all (a temporary file renamed over it). Returns its size. */
export async function writeArchiveFile(file: string, archive: MaskArchive): Promise<number> {
  const bytes = encodeMaskArchive(archive);
  const temp = `${file}.tmp-${process.pid}`;
  try {
    await writeFile(temp, bytes);
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw new SupsupError('E_BAD_ARGUMENT', `cannot write the archive ${file}: ${(error as Error).message}`);
  }
  return bytes.length;
}

/**
 * One side of `masks diff` or the source of `list`/`show`: an archive file, a file store directory, or
 * `redis:NAMESPACE` on the configured Redis.
 */
export async function readOperand(operand: string, flags: StoreFlags): Promise<MaskArchive> {
  if (operand.startsWith('redis:')) {
    return readConfiguredStore(
      masksConfig({ config: flags.config, namespace: operand.slice('redis:'.length) }),
    );
  }
  if (existsSync(operand) && statSync(operand).isDirectory()) {
    return readConfiguredStore(masksConfig({ config: flags.config, dir: operand }));
  }
  return readArchiveFile(operand);
}
