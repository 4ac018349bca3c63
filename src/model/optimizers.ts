import * as tf from '@tensorflow/tfjs-core';
import { SupsupError } from '../errors.js';

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
