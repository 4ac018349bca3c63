import * as tf from '@tensorflow/tfjs-core';
import { SupsupError } from '../../errors.js';

/**
 * Optimizers for mask scores, in PyTorch's formulation (spec §10.6): TF.js's RMSprop puts epsilon
 * inside the square root and defaults to decay 0.9, which shrinks the small score gradients'
 * steps several-fold. State lives in tf.Variables owned by the optimizer.
 */
export type OptimizerConfig =
  | { readonly kind: 'rmsprop'; readonly lr: number; readonly alpha: number; readonly eps: number }
  | {
      readonly kind: 'adam';
      readonly lr: number;
      readonly beta1: number;
      readonly beta2: number;
      readonly eps: number;
      /** Coupled L2 (PyTorch Adam weight_decay): wd·θ is added to the gradient. */
      readonly weightDecay: number;
    }
  | { readonly kind: 'sgd'; readonly lr: number; readonly momentum: number; readonly weightDecay: number };

export type OptimizerKind = OptimizerConfig['kind'];

/** The paper's defaults: RMSprop lr 1e-4 (PyTorch α 0.99, eps 1e-8); Adam lr 1e-3, wd 1e-4; SGD 0.1/0.9/1e-4. */
export function defaultOptimizer(kind: OptimizerKind, lr?: number): OptimizerConfig {
  switch (kind) {
    case 'rmsprop':
      return { kind, lr: lr ?? 1e-4, alpha: 0.99, eps: 1e-8 };
    case 'adam':
      return { kind, lr: lr ?? 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-4 };
    case 'sgd':
      return { kind, lr: lr ?? 0.1, momentum: 0.9, weightDecay: 1e-4 };
    default:
      throw new SupsupError('E_BAD_ARGUMENT', `unknown optimizer '${String(kind)}' (rmsprop, adam, sgd)`);
  }
}

export interface ScoreOptimizer {
  /** Applies one update to `params` from `grads` (same order and shapes). Call inside tf.tidy. */
  apply(params: readonly tf.Variable[], grads: readonly tf.Tensor[]): void;
  readonly steps: number;
  /** A copy of the optimizer's state: step count and every slot, by name, per parameter. */
  exportState(): OptimizerState;
  dispose(): void;
}

export interface OptimizerState {
  readonly steps: number;
  readonly slots: Readonly<Record<string, readonly Float32Array[]>>;
}

class SlotVariables {
  private readonly slots = new Map<string, tf.Variable[]>();

  restore(state: OptimizerState['slots'], shapes: readonly (readonly number[])[]): void {
    for (const [name, arrays] of Object.entries(state)) {
      this.slots.set(
        name,
        arrays.map((a, i) => tf.variable(tf.tensor(a, shapes[i] as number[]), false)),
      );
    }
  }

  export(): Record<string, Float32Array[]> {
    const out: Record<string, Float32Array[]> = {};
    for (const [name, vars] of this.slots)
      out[name] = vars.map((v) => Float32Array.from(v.dataSync() as Float32Array));
    return out;
  }

  get(name: string, params: readonly tf.Variable[]): tf.Variable[] {
    let slot = this.slots.get(name);
    if (slot === undefined) {
      slot = params.map((p) => tf.variable(tf.zerosLike(p), false));
      this.slots.set(name, slot);
    }
    return slot;
  }

  dispose(): void {
    for (const slot of this.slots.values()) for (const v of slot) v.dispose();
    this.slots.clear();
  }
}

/**
 * An optimizer for parameters of the given shapes, optionally resuming from an exported state
 * (`shapes` is needed only then).
 */
export function makeOptimizer(
  config: OptimizerConfig,
  resume?: { readonly state: OptimizerState; readonly shapes: readonly (readonly number[])[] },
): ScoreOptimizer {
  const slots = new SlotVariables();
  let steps = 0;
  if (resume !== undefined) {
    slots.restore(resume.state.slots, resume.shapes);
    steps = resume.state.steps;
  }
  const update = updateRule(config, slots);
  return {
    apply(params, grads) {
      steps++;
      update(params, grads, steps);
    },
    get steps() {
      return steps;
    },
    exportState() {
      return { steps, slots: slots.export() };
    },
    dispose() {
      slots.dispose();
    },
  };
}

type UpdateRule = (params: readonly tf.Variable[], grads: readonly tf.Tensor[], step: number) => void;

function updateRule(config: OptimizerConfig, slots: SlotVariables): UpdateRule {
  switch (config.kind) {
    case 'rmsprop':
      return (params, grads) => {
        const squareAvg = slots.get('squareAvg', params);
        params.forEach((p, i) => {
          const g = grads[i] as tf.Tensor;
          const v = squareAvg[i] as tf.Variable;
          v.assign(tf.add(tf.mul(v, config.alpha), tf.mul(tf.square(g), 1 - config.alpha)));
          p.assign(tf.sub(p, tf.div(tf.mul(g, config.lr), tf.add(tf.sqrt(v), config.eps))));
        });
      };
    case 'adam':
      return (params, grads, step) => {
        const m = slots.get('m', params);
        const v = slots.get('v', params);
        const c1 = 1 - config.beta1 ** step;
        const c2 = 1 - config.beta2 ** step;
        params.forEach((p, i) => {
          let g = grads[i] as tf.Tensor;
          if (config.weightDecay !== 0) g = tf.add(g, tf.mul(p, config.weightDecay));
          const mi = m[i] as tf.Variable;
          const vi = v[i] as tf.Variable;
          mi.assign(tf.add(tf.mul(mi, config.beta1), tf.mul(g, 1 - config.beta1)));
          vi.assign(tf.add(tf.mul(vi, config.beta2), tf.mul(tf.square(g), 1 - config.beta2)));
          const denom = tf.add(tf.div(tf.sqrt(vi), Math.sqrt(c2)), config.eps);
          p.assign(tf.sub(p, tf.div(tf.mul(mi, config.lr / c1), denom)));
        });
      };
    case 'sgd':
      return (params, grads, step) => {
        const buf = slots.get('momentum', params);
        params.forEach((p, i) => {
          let g = grads[i] as tf.Tensor;
          if (config.weightDecay !== 0) g = tf.add(g, tf.mul(p, config.weightDecay));
          const b = buf[i] as tf.Variable;
          // PyTorch: the first step initialises the buffer with the gradient itself.
          b.assign(step === 1 ? g : tf.add(tf.mul(b, config.momentum), g));
          p.assign(tf.sub(p, tf.mul(config.momentum === 0 ? g : b, config.lr)));
        });
      };
  }
}

/**
 * The same optimizers on plain Float32Arrays, for the training step's fused host update. Every
 * operation is rounded to float32 (Math.fround) in the order the tensor version above applies its
 * ops, with the scalars rounded to float32 as tfjs does, so both give bit-identical parameters on
 * the wasm and cpu backends (each tfjs op there is one correctly rounded float32 operation, and a
 * float64 operation on float32 inputs rounded back to float32 is the correctly rounded float32
 * result for +, −, ×, ÷ and √).
 */
export interface HostOptimizer {
  /** One update of params[l] in place from grads[l]; grads may be overwritten. */
  apply(params: readonly Float32Array[], grads: readonly Float32Array[]): void;
  /**
   * Counts a step whose update a fused kernel applies itself to the slot arrays; returns the step
   * number (1 for the first).
   */
  advance(): number;
  /** The state array `name` of layer l (e.g. RMSprop's 'squareAvg'), updated in place. */
  slot(name: string, layer: number): Float32Array;
  readonly steps: number;
  exportState(): OptimizerState;
}

const f32 = Math.fround;

export function makeHostOptimizer(
  config: OptimizerConfig,
  sizes: readonly number[],
  resume?: OptimizerState,
  allocate: (length: number) => Float32Array = (length) => new Float32Array(length),
): HostOptimizer {
  const names =
    config.kind === 'rmsprop' ? ['squareAvg'] : config.kind === 'adam' ? ['m', 'v'] : ['momentum'];
  const slots = new Map<string, Float32Array[]>();
  for (const name of names) {
    const saved = resume?.slots[name];
    // tfjs creates a slot on first use (always zero), so a resumed state without it starts at zero.
    slots.set(
      name,
      sizes.map((n, l) => {
        const a = allocate(n);
        const from = saved?.[l];
        if (from !== undefined) a.set(from);
        return a;
      }),
    );
  }
  let steps = resume?.steps ?? 0;
  let touched = resume !== undefined && names.some((n) => resume.slots[n] !== undefined);
  const slot = (name: string, l: number): Float32Array => {
    const arrays = slots.get(name);
    if (arrays === undefined) throw new SupsupError('E_INTERNAL', `no optimizer slot '${name}'`);
    return arrays[l] as Float32Array;
  };
  return {
    advance() {
      steps++;
      touched = true;
      return steps;
    },
    slot,
    apply(params, grads) {
      steps++;
      touched = true;
      for (let l = 0; l < params.length; l++) {
        const p = params[l] as Float32Array;
        const g = grads[l] as Float32Array;
        switch (config.kind) {
          case 'rmsprop':
            rmspropUpdate(p, g, slot('squareAvg', l), config.lr, config.alpha, config.eps);
            break;
          case 'adam':
            adamUpdate(p, g, slot('m', l), slot('v', l), config, steps);
            break;
          case 'sgd':
            sgdUpdate(p, g, slot('momentum', l), config, steps);
            break;
        }
      }
    },
    get steps() {
      return steps;
    },
    exportState() {
      const out: Record<string, Float32Array[]> = {};
      if (touched) for (const [name, arrays] of slots) out[name] = arrays.map((a) => Float32Array.from(a));
      return { steps, slots: out };
    },
  };
}

function rmspropUpdate(
  p: Float32Array,
  g: Float32Array,
  v: Float32Array,
  lr: number,
  alpha: number,
  eps: number,
): void {
  const a = f32(alpha);
  const b = f32(1 - alpha);
  const rate = f32(lr);
  const e = f32(eps);
  for (let i = 0; i < p.length; i++) {
    const gi = g[i] as number;
    const vi = f32(f32((v[i] as number) * a) + f32(f32(gi * gi) * b));
    v[i] = vi;
    p[i] = f32((p[i] as number) - f32(f32(gi * rate) / f32(f32(Math.sqrt(vi)) + e)));
  }
}

function adamUpdate(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  config: Extract<OptimizerConfig, { kind: 'adam' }>,
  step: number,
): void {
  const wd = f32(config.weightDecay);
  const b1 = f32(config.beta1);
  const nb1 = f32(1 - config.beta1);
  const b2 = f32(config.beta2);
  const nb2 = f32(1 - config.beta2);
  const root2 = f32(Math.sqrt(1 - config.beta2 ** step));
  const rate = f32(config.lr / (1 - config.beta1 ** step));
  const e = f32(config.eps);
  const decay = config.weightDecay !== 0;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i] as number;
    const gi = decay ? f32((g[i] as number) + f32(pi * wd)) : (g[i] as number);
    const mi = f32(f32((m[i] as number) * b1) + f32(gi * nb1));
    const vi = f32(f32((v[i] as number) * b2) + f32(f32(gi * gi) * nb2));
    m[i] = mi;
    v[i] = vi;
    const denom = f32(f32(f32(Math.sqrt(vi)) / root2) + e);
    p[i] = f32(pi - f32(f32(mi * rate) / denom));
  }
}

function sgdUpdate(
  p: Float32Array,
  g: Float32Array,
  buf: Float32Array,
  config: Extract<OptimizerConfig, { kind: 'sgd' }>,
  step: number,
): void {
  const wd = f32(config.weightDecay);
  const mu = f32(config.momentum);
  const rate = f32(config.lr);
  const decay = config.weightDecay !== 0;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i] as number;
    const gi = decay ? f32((g[i] as number) + f32(pi * wd)) : (g[i] as number);
    const bi = step === 1 ? gi : f32(f32((buf[i] as number) * mu) + gi);
    buf[i] = bi;
    p[i] = f32(pi - f32((config.momentum === 0 ? gi : bi) * rate));
  }
}
