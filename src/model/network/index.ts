/**
 * The network room: architectures, the seeded random streams, the fixed random weights, the masked
 * network on tfjs, its host forward pass (WebAssembly GEMM) and the choice of tfjs backend. Code
 * outside this room imports from here.
 */
export {
  type Architecture,
  architectureKey,
  type LayerShape,
  layerShapes,
  makeArchitecture,
  NAMED_ARCHITECTURES,
} from './arch.js';
export {
  BACKEND_PREFERENCES,
  type BackendAttempt,
  type BackendInfo,
  type BackendName,
  type BackendPreference,
  installedVersions,
  NATIVE_PACKAGES,
  type NativeInfo,
  parseBackendPreference,
  selectBackend,
} from './backend.js';
export { type Classification, classifyLogits } from './classification.js';
export { BLOCK_ROWS, HostForward } from './host-forward.js';
export { type BackwardTransposes, type ForwardTrace, MaskedMlp, type TransposedTrace } from './network.js';
export { Purpose, type PurposeName, philox4x32, RandomStream, randomBits } from './prng.js';
export { type BaseWeights, kaimingUniformScores, signedConstantWeights } from './weights.js';
