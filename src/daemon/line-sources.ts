import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { compareOffsets } from '../store/offsets.js';
import type { StorePosition } from '../store/types.js';
import { JsonlFileSource, StdinSource } from '../stream/file.js';
import type { Source } from '../stream/types.js';
import { checkpointed, OffsetCheckpoint } from './checkpoint.js';

/** What a source built after the daemon opened may ask of it. */
export interface SourceContext {
  /** The store position of the daemon's last commit (checkpoints record it). */
  storePosition(): StorePosition;
  /** The store's applied offsets per partition key (as the daemon loaded them). */
  appliedOffsets(): Readonly<Record<string, string>>;
}

const FILE_KEY = 'file/0';
const STDIN_KEY = 'stdin/0';

/** A JSONL file, resumed after its checkpoint; rewind() (store.onRegression replay) reads it again from the store's offset. */
export async function makeFileSource(
  config: { readonly path: string; readonly checkpoint: string },
  context: SourceContext,
): Promise<Source> {
  const checkpoint = new OffsetCheckpoint(config.checkpoint);
  await checkpoint.load();
  const open = (startAfter: string | undefined) => new JsonlFileSource(config.path, { startAfter });
  return checkpointed(open(checkpoint.get(FILE_KEY)), checkpoint, {
    storePosition: () => context.storePosition(),
    reopen: open,
    key: FILE_KEY,
  });
}

/**
 * stdin. Every session is new input unless it is named: its lines are numbered on from the highest offset the
 * store applied or the checkpoint recorded, so none of them is taken for a record already applied. With a
 * checkpoint and `session`, starting again with the same session name resumes that session after its checkpoint
 * (the same input piped again); any other start is a new session. stdin cannot be replayed.
 */
export async function makeStdinSource(
  config: { readonly checkpoint?: string; readonly session?: string },
  context: SourceContext,
  input: Readable = process.stdin,
): Promise<Source> {
  const applied = context.appliedOffsets()[STDIN_KEY];
  if (config.checkpoint === undefined) {
    return new StdinSource(input, { firstOffset: nextOffset(applied, undefined) });
  }
  const checkpoint = new OffsetCheckpoint(config.checkpoint);
  await checkpoint.load();
  const previous = checkpoint.session;
  const consumed = checkpoint.get(STDIN_KEY);
  let options: { firstOffset: string; startAfter?: string };
  if (config.session !== undefined && previous?.id === config.session) {
    options = {
      firstOffset: previous.firstOffset,
      ...(consumed === undefined ? {} : { startAfter: consumed }),
    };
  } else {
    const firstOffset = nextOffset(applied, consumed);
    checkpoint.beginSession({ id: config.session ?? randomUUID(), firstOffset });
    options = { firstOffset };
  }
  return checkpointed(new StdinSource(input, options), checkpoint, {
    storePosition: () => context.storePosition(),
  });
}

/** One past the larger of two offsets (either may be absent): where a new session's numbering starts. */
function nextOffset(a: string | undefined, b: string | undefined): string {
  const highest = a === undefined ? b : b === undefined ? a : compareOffsets(a, b) >= 0 ? a : b;
  return highest === undefined ? '0' : (BigInt(highest) + 1n).toString();
}
