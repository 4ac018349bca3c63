import { SupsupError } from '../../errors.js';

/** A bias-free MLP: inputs → hidden… → outputs, ReLU between layers, every layer masked. */
export interface Architecture {
  readonly name: string;
  readonly inputs: number;
  readonly hidden: readonly number[];
  /** s: real classes plus superfluous output neurons. */
  readonly outputs: number;
  /** ℓ: the number of real classes (labels lie in [0, ℓ)). */
  readonly realClasses: number;
}

export type LayerShape = readonly [fanIn: number, fanOut: number];

export const NAMED_ARCHITECTURES: Readonly<Record<string, readonly number[]>> = {
  lenet: [300, 100],
  fc1024: [1024, 1024],
};

export function makeArchitecture(options: {
  arch?: string;
  hidden?: readonly number[];
  outputs: number;
  inputs?: number;
  realClasses?: number;
}): Architecture {
  const inputs = options.inputs ?? 784;
  const realClasses = options.realClasses ?? 10;
  const problems: string[] = [];
  let hidden: readonly number[];
  let name: string;
  if (options.arch !== undefined) {
    const named = NAMED_ARCHITECTURES[options.arch];
    if (named === undefined) {
      problems.push(
        `unknown architecture '${options.arch}' (known: ${Object.keys(NAMED_ARCHITECTURES).join(', ')})`,
      );
    }
    hidden = named ?? [];
    name = options.arch;
  } else {
    hidden = options.hidden ?? [];
    name = `mlp-${hidden.join('-')}`;
  }
  if (hidden.length === 0 && options.arch === undefined) problems.push('give --arch or --hidden');
  for (const width of hidden) {
    if (!Number.isInteger(width) || width < 1 || width > 65536) {
      problems.push(`hidden width ${width} is not an integer in [1, 65536]`);
    }
  }
  if (!Number.isInteger(options.outputs) || options.outputs < 1 || options.outputs > 65536) {
    problems.push(`outputs ${options.outputs} is not an integer in [1, 65536]`);
  }
  if (!Number.isInteger(realClasses) || realClasses < 1 || realClasses > options.outputs) {
    problems.push(`real classes ${realClasses} must be an integer in [1, outputs=${options.outputs}]`);
  }
  if (!Number.isInteger(inputs) || inputs < 1) problems.push(`inputs ${inputs} is not a positive integer`);
  if (problems.length > 0) {
    throw new SupsupError('E_BAD_ARGUMENT', `invalid architecture: ${problems.join('; ')}`, {
      details: { problems },
    });
  }
  return { name, inputs, hidden: [...hidden], outputs: options.outputs, realClasses };
}

export function layerShapes(arch: Architecture): LayerShape[] {
  const widths = [arch.inputs, ...arch.hidden, arch.outputs];
  const shapes: LayerShape[] = [];
  for (let l = 0; l + 1 < widths.length; l++) shapes.push([widths[l] as number, widths[l + 1] as number]);
  return shapes;
}

/** A short, stable description used to refuse masks made for another network. */
export function architectureKey(arch: Architecture): string {
  return [arch.inputs, ...arch.hidden, arch.outputs].join('-');
}
