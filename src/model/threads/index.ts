/**
 * The threads room: the pool of worker threads that share a dot memory (dot-pool.ts, whose
 * workers run dot-worker.ts) and the job protocol that cuts a dot product into row chunks
 * (table-dot.ts). Code outside this room imports from here.
 */
export {
  DotPool,
  type DotShare,
  type ForgetMemory,
  type ForwardShare,
  type PostedMemory,
} from './dot-pool.js';
export {
  chunkRows,
  combineChunks,
  type DotJob,
  dotChunks,
  ROW_CHUNKS,
  ROWS_PER_GROUP,
  type ScreenJob,
  type TableDotJob,
} from './table-dot.js';
