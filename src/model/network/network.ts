import * as tf from '@tensorflow/tfjs-core';
import type { Architecture } from './arch.js';
import { layerShapes } from './arch.js';
import type { BaseWeights } from './weights.js';

/**
 * The bias-free ReLU MLP with explicit forward and backward passes. Gradients are written out by
 * hand rather than taken from tf.grad: no gradient is computed for the input or for the fixed
 * weights, and every transpose is explicit (tfjs-wasm's matMul with transposeA/B is 20-30x slower
 * than tf.transpose followed by matMul).
 */
export interface ForwardTrace {
  /** The input of each layer: x, relu(a1), relu(a2), … */
  readonly inputs: readonly tf.Tensor2D[];
  /** Pre-activations of the hidden layers. */
  readonly hiddenPre: readonly tf.Tensor2D[];
  readonly logits: tf.Tensor2D;
}

/** A forward pass on transposed activations (see MaskedMlp.forwardTransposed). */
export interface TransposedTrace {
  /** The input of each layer transposed, [width, rows]: xᵀ, relu(a1)ᵀ, … */
  readonly inputsT: readonly tf.Tensor2D[];
  /** Pre-activations of the hidden layers, transposed. */
  readonly hiddenPreT: readonly tf.Tensor2D[];
  readonly logits: tf.Tensor2D;
}

/** Transposes the backward pass can take instead of forming them. */
export interface BackwardTransposes {
  /** (W̃_l)ᵀ, [fanOut, fanIn], per layer (entries for layer 0, or null, are ignored). */
  readonly effectiveT?: readonly (tf.Tensor2D | null)[];
  /** The first layer's input transposed, [inputs, rows]. */
  readonly inputT?: tf.Tensor2D;
}

export class MaskedMlp {
  readonly arch: Architecture;
  /** Fixed base weights W_l, [fanIn, fanOut]. Owned: released by dispose(). */
  readonly weights: readonly tf.Tensor2D[];
  /** The same weights on the host, row-major [fanIn, fanOut] (not owned: the caller's arrays). */
  readonly baseLayers: readonly Float32Array[];
  private disposed = false;

  constructor(arch: Architecture, base: BaseWeights) {
    this.arch = arch;
    this.baseLayers = base.layers;
    this.weights = layerShapes(arch).map(([fanIn, fanOut], l) =>
      tf.keep(tf.tensor2d(base.layers[l] as Float32Array, [fanIn, fanOut], 'float32')),
    );
  }

  /** Logits and the activations the backward pass needs. Call inside tf.tidy. */
  forward(x: tf.Tensor2D, effective: readonly tf.Tensor2D[]): ForwardTrace {
    const inputs: tf.Tensor2D[] = [x];
    const hiddenPre: tf.Tensor2D[] = [];
    let h: tf.Tensor2D = x;
    const last = effective.length - 1;
    for (let l = 0; l < last; l++) {
      const pre = tf.matMul(h, effective[l] as tf.Tensor2D) as tf.Tensor2D;
      hiddenPre.push(pre);
      h = tf.relu<tf.Tensor2D>(pre);
      inputs.push(h);
    }
    return { inputs, hiddenPre, logits: tf.matMul(h, effective[last] as tf.Tensor2D) };
  }

  /** Logits only. Call inside tf.tidy. */
  logits(x: tf.Tensor2D, effective: readonly tf.Tensor2D[]): tf.Tensor2D {
    let h: tf.Tensor2D = x;
    const last = effective.length - 1;
    for (let l = 0; l < last; l++) h = tf.relu<tf.Tensor2D>(tf.matMul(h, effective[l] as tf.Tensor2D));
    return tf.matMul(h, effective[last] as tf.Tensor2D);
  }

  /**
   * ∂Obj/∂W̃_l for every layer from ∂Obj/∂logits. The input gradient of the first layer is never
   * formed. `transposed` may supply (W̃_l)ᵀ for layers ≥ 1 and xᵀ, already on the backend, to save
   * the transposes. Call inside tf.tidy.
   */
  backward(
    trace: ForwardTrace,
    effective: readonly tf.Tensor2D[],
    dLogits: tf.Tensor2D,
    transposed: BackwardTransposes = {},
  ): tf.Tensor2D[] {
    return this.backwardDeltas(trace, effective, dLogits, transposed).map((delta, l) => {
      const inputT =
        l === 0 && transposed.inputT !== undefined
          ? transposed.inputT
          : tf.transpose(trace.inputs[l] as tf.Tensor2D);
      return tf.matMul(inputT, delta);
    });
  }

  /**
   * δ_l = ∂Obj/∂(outputs of layer l) for every layer, from δ_last = ∂Obj/∂logits:
   * δ_l = (δ_{l+1} · W̃_{l+1}ᵀ) ⊙ 1[a_l > 0]. The weight gradients are h_lᵀ · δ_l; with one row, a
   * caller forms them as outer products (AlphaVector.setRankOne). Call inside tf.tidy.
   */
  backwardDeltas(
    trace: ForwardTrace,
    effective: readonly tf.Tensor2D[],
    dLogits: tf.Tensor2D,
    transposed: BackwardTransposes = {},
  ): tf.Tensor2D[] {
    const deltas: tf.Tensor2D[] = new Array<tf.Tensor2D>(effective.length);
    let delta: tf.Tensor2D = dLogits;
    for (let l = effective.length - 1; l >= 0; l--) {
      deltas[l] = delta;
      if (l > 0) {
        const weightT = transposed.effectiveT?.[l] ?? tf.transpose(effective[l] as tf.Tensor2D);
        const back = tf.matMul(delta, weightT);
        delta = tf.mul<tf.Tensor2D>(back, tf.step(trace.hiddenPre[l - 1] as tf.Tensor2D));
      }
    }
    return deltas;
  }

  /**
   * ∂Obj/∂W̃_l with the transposes folded into matMul's transpose flags: G_l = h_lᵀ · δ_l and
   * δ_l = (δ_{l+1} · W̃_lᵀ) ⊙ 1[a_l > 0]. For backends whose matMul takes the flags at no cost
   * (libtensorflow's BLAS); tfjs-wasm is 20-30× slower with them. Call inside tf.tidy.
   */
  backwardWithFlags(
    trace: ForwardTrace,
    effective: readonly tf.Tensor2D[],
    dLogits: tf.Tensor2D,
  ): tf.Tensor2D[] {
    const layers = effective.length;
    const grads: tf.Tensor2D[] = new Array<tf.Tensor2D>(layers);
    let delta: tf.Tensor2D = dLogits;
    for (let l = layers - 1; l >= 0; l--) {
      grads[l] = tf.matMul(trace.inputs[l] as tf.Tensor2D, delta, true, false);
      if (l > 0) {
        const back = tf.matMul(delta, effective[l] as tf.Tensor2D, false, true);
        delta = tf.mul<tf.Tensor2D>(back, tf.step(trace.hiddenPre[l - 1] as tf.Tensor2D));
      }
    }
    return grads;
  }

  /**
   * The forward pass on transposed activations, for training: a_{l+1}ᵀ = W̃_lᵀ · h_lᵀ. The weights are
   * then the left operand of every product, which tfjs-wasm (XNNPACK) does not repack; as the right
   * operand, weights that change every step are repacked every step (measured: 10.1 ms instead of
   * 5.6 ms for 128×784 by 784×1024). Returns the hidden inputs transposed, the pre-activations
   * transposed and the logits [rows, s]. Call inside tf.tidy.
   */
  forwardTransposed(xT: tf.Tensor2D, effectiveT: readonly tf.Tensor2D[]): TransposedTrace {
    const inputsT: tf.Tensor2D[] = [xT];
    const hiddenPreT: tf.Tensor2D[] = [];
    let hT: tf.Tensor2D = xT;
    const last = effectiveT.length - 1;
    for (let l = 0; l < last; l++) {
      const pre = tf.matMul(effectiveT[l] as tf.Tensor2D, hT) as tf.Tensor2D;
      hiddenPreT.push(pre);
      hT = tf.relu<tf.Tensor2D>(pre);
      inputsT.push(hT);
    }
    const logitsT = tf.matMul(effectiveT[last] as tf.Tensor2D, hT) as tf.Tensor2D;
    return { inputsT, hiddenPreT, logits: tf.transpose(logitsT) };
  }

  /**
   * ∂L/∂W̃_l, [fanIn, fanOut], from a transposed trace: G_l = h_lᵀ · δ_l with δ_l = (δ_lᵀ)ᵀ, and
   * δ_lᵀ = (W̃_l · δ_{l+1}ᵀ) ⊙ 1[a_l > 0], so the big operands are again on the left. Only
   * activation-sized matrices are transposed. `effective[0]` is not used (may be null). Call inside
   * tf.tidy.
   */
  backwardTransposed(
    trace: TransposedTrace,
    effective: readonly (tf.Tensor2D | null)[],
    dLogits: tf.Tensor2D,
  ): tf.Tensor2D[] {
    const layers = effective.length;
    const grads: tf.Tensor2D[] = new Array<tf.Tensor2D>(layers);
    let delta: tf.Tensor2D = dLogits;
    for (let l = layers - 1; l >= 0; l--) {
      grads[l] = tf.matMul(trace.inputsT[l] as tf.Tensor2D, delta);
      if (l > 0) {
        const weights = effective[l];
        if (weights === null || weights === undefined) throw new Error(`no weights for layer ${l}`);
        const backT = tf.matMul(weights, tf.transpose(delta));
        const deltaT = tf.mul<tf.Tensor2D>(backT, tf.step(trace.hiddenPreT[l - 1] as tf.Tensor2D));
        delta = tf.transpose(deltaT);
      }
    }
    return grads;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const w of this.weights) w.dispose();
  }
}
