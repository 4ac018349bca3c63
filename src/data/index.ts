/** The data layer: data sets (MNIST, Fashion-MNIST) and the benchmark task views on them. */
import { SupsupError } from '../errors.js';
import { loadFashionMnist } from './fashion.js';
import type { Dataset, DatasetName } from './images.js';
import { loadMnist } from './mnist.js';

export const DATASET_NAMES: readonly DatasetName[] = ['mnist', 'fashion'];

/** The named data set, from its default location (Fashion-MNIST: $SUPSUPD_FASHION_DIR or the Debian package). */
export function loadDataset(name: DatasetName): Dataset {
  switch (name) {
    case 'mnist':
      return loadMnist();
    case 'fashion':
      return loadFashionMnist();
    default:
      throw new SupsupError(
        'E_BAD_ARGUMENT',
        `unknown data set ${String(name)}: expected one of ${DATASET_NAMES.join(', ')}`,
      );
  }
}

export {
  DEFAULT_FASHION_DIR,
  defaultFashionDir,
  FASHION_DIR_ENV,
  FASHION_FILES,
  loadFashionMnist,
} from './fashion.js';
export { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, type IdxImages, parseIdxImages, parseIdxLabels } from './idx.js';
export type { Dataset, DatasetName, ImageSet, TaskImages, TaskView } from './images.js';
export { loadMnist, mnistTrainCount } from './mnist.js';
export { FASHION_STATS, MNIST_STATS, type PixelStats } from './normalise.js';
export { rotationSourceMap } from './rotation.js';
export {
  makeTasks,
  permutedTasks,
  rotatedTasks,
  splitTasks,
  TASK_KINDS,
  type TaskKind,
  taskPermutation,
} from './tasks.js';
