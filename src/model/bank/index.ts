/**
 * The bank room: the mask layout (bits of a network's masks, packed), the mask bank with its
 * storage, bit counts, exact kernels and quantised screen, the certified argmin over the screen,
 * and the task-inference vector V. Code outside this room imports from here.
 */
export { AlphaVector } from './alpha-vector.js';
export { type CertifiedArgMin, certifiedArgMin, type ScreenedDots } from './certified-argmin.js';
export { MaskBank, type MaskBankOptions } from './mask-bank.js';
export {
  bytesOfWords,
  type MaskLayout,
  maskLayout,
  packLayers,
  popcount,
  randomMask,
  unpackLayer,
} from './mask-layout.js';
