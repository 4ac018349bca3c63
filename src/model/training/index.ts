/**
 * The training room: the score trainer (one step of the edge-popup / threshold rule), its
 * optimizers, the mask rules, the one-shot objectives and the training state's byte format. Code
 * outside this room imports from here.
 */
export {
  keptCount,
  kthLargestMagnitude,
  type MaskRule,
  maskOfScores,
  packScores,
  scoreGradient,
  validateMaskRule,
} from './mask-rule.js';
export {
  entropyObjective,
  type Objective,
  type ObjectiveResult,
  objectiveGradient,
  superfluousObjective,
} from './objectives.js';
export {
  defaultOptimizer,
  type HostOptimizer,
  makeHostOptimizer,
  makeOptimizer,
  type OptimizerConfig,
  type OptimizerKind,
  type OptimizerState,
  type ScoreOptimizer,
} from './optimizers.js';
export {
  type LabelledBatch,
  type ProductLayout,
  productLayoutFor,
  ScoreTrainer,
  type StepProfile,
} from './trainer.js';
export { decodeTrainingState, encodeTrainingState, type TrainingState } from './training-state.js';
