/**
 * The kernels room: the WebAssembly kernels in their source form (a typed builder, ADR 0008) and
 * their loaders. Code outside this room imports from here.
 */
export {
  type AccumulateRows,
  DOT_MEMORY_MAX_PAGES,
  type DotKernels,
  DotMemory,
  dotKernels,
  dotModuleBytes,
  KERNEL_THREADS,
  type ReadV128,
  TABLE_AREA_BYTES,
} from './dot-kernel.js';
export {
  type ForwardJob,
  type ForwardLayer,
  forwardRows,
  type Gemm,
  gemmKernel,
  gemmModule,
  gemmModuleBytes,
} from './gemm-kernel.js';
export { NIBBLE_TABLE_BYTES, type NibbleDots } from './nibble-kernel.js';
export {
  MAX_SCREEN_BITS,
  ROUNDING_SLACK,
  relaxedProbeBytes,
  relaxedSimd,
  SCREEN_TABLE_BYTES,
  type ScreenRows,
  SPAN_ROWS,
  screenScratchBytes,
} from './screen-kernel.js';
export { SimdArena, simdModuleBytes, type ThresholdRmsprop } from './simd-kernels.js';
export {
  hasWasmFeature,
  PAGE_BYTES,
  WASM32_MAX_PAGES,
  Wasm,
  type WasmFeature,
  type WasmInstance,
  type WasmMemory,
  type WasmModule,
  withoutNameSection,
} from './wasm-module.js';
