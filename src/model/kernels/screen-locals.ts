/**
 * The parameters and locals of screen_rows (screen-kernel.ts), allocated by name, and what its
 * passes share: the bias of the high bytes and the walk over a span's rows.
 */
import { addTo, F64, get, I32, i32Const, indexAddress, reached, set, V128, whileNot } from './wasm-asm.js';
import type { FunctionBuilder } from './wasm-module.js';

/**
 * Added to every high byte, so that it is in [2, 126] and a row's two add in u8 (≤ 252): they are
 * then summed like the low bytes, without widening.
 */
export const HIGH_BIAS = 64;

const PARAMS = [
  'list',
  'blocks',
  'rowFrom',
  'rowTo',
  'stride',
  'values',
  'acc',
  'accStride',
  'scratch',
] as const;
/** i32 locals: the span [start, stop), row pointers, the block walk, lane and table pointers. */
const I32_LOCALS = [
  'start',
  'stop',
  'vp',
  'i',
  'b',
  'entry',
  'p',
  'ap',
  'tp',
  'qEnd',
  'mp',
  'laneEnd',
  'fp',
  'lacc',
] as const;
/** f64 locals: the span's max |T|, its unit and 1/unit, and δ. */
const F64_LOCALS = ['maxAbs', 'unit', 'inv', 'delta'] as const;
/** v128 locals of the lookups (nib … l), of pass 1 (w0 … absV) and constants (invV … lowByteMask). */
const V128_LOCALS = [
  'nib',
  'vec',
  'lo',
  'hi',
  's',
  'ha',
  'hb',
  'la',
  'lb',
  'l',
  'w0',
  'w1',
  'w2',
  'w3',
  'w4',
  'posV',
  'negV',
  'maxV',
  'absV',
  'invV',
  'magicV',
  'highLaneMask',
  'lowByteMask',
] as const;

type Names<T extends readonly string[]> = Record<T[number], number>;

export type ScreenLocals = Names<typeof PARAMS> &
  Names<typeof I32_LOCALS> &
  Names<typeof F64_LOCALS> &
  Names<typeof V128_LOCALS> & {
    /** The 16 subset sums of a nibble, as eight float64 pairs. */
    readonly tPairs: readonly number[];
    /** The bias of the span's high bytes, per i32 lane. */
    readonly biasV: number;
  };

/** Declares screen_rows's parameters and locals on `f`, in the order of their indices. */
export function screenLocals(f: FunctionBuilder): ScreenLocals {
  const params = f.params(I32, PARAMS);
  const i32s = f.locals(I32, I32_LOCALS);
  const f64s = f.locals(F64, F64_LOCALS);
  const v128s = f.locals(V128, V128_LOCALS);
  const tPairs = f.localRun(V128, 'tPair', 8);
  const { biasV } = f.locals(V128, ['biasV']);
  return { ...params, ...i32s, ...f64s, ...v128s, tPairs, biasV };
}

/** `body` for each byte row i of the span [start, stop), vp at the row's eight float64 values. */
export function eachSpanRow(l: ScreenLocals, body: readonly number[]): number[] {
  return [
    ...get(l.start),
    ...set(l.i),
    ...whileNot(reached(l.i, l.stop), [
      ...indexAddress(l.vp, l.values, l.i, 6),
      ...body,
      ...addTo(l.i, i32Const(1)),
    ]),
  ];
}
