/**
 * Mask archives (docs/masks.md): a store's state as one portable, versioned, checksummed file, and one task of
 * it as a standalone model. The archive's byte container is src/codec/archive-codec.ts.
 */
export {
  type ArchivedTask,
  type ArchivedTransform,
  decodeMaskArchive,
  encodeMaskArchive,
  type MaskArchive,
  type ModelArchive,
  type StoreArchive,
} from './format.js';
export { StandaloneModel } from './model.js';
export { type RemoveContext, removeLastTask, TOOLS_PARTITION } from './remove-task.js';
export {
  effectiveTransform,
  modelArchiveOf,
  type ReadContext,
  readStoreArchive,
  type WriteContext,
  writeStoreArchive,
} from './store-copy.js';
