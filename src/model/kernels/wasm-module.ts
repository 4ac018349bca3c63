/**
 * Functions and modules of the kernels' typed builder (ADR 0008): parameters and locals allocated
 * by name, a module's type, import, function, export and code sections, and a name section with
 * every function's and local's name (so a disassembler or V8's stack traces show them). Also the
 * part of the WebAssembly JS API the kernels use, and their compilation: a module is compiled once,
 * on first use; it is null only where the engine lacks a feature it needs, and any other compile
 * error is thrown.
 */
import { SupsupError } from '../../errors.js';
import { name, op, uleb, V128, type ValueType, vec } from './wasm-asm.js';

/**
 * The part of the WebAssembly JS API used here (the project compiles against ES2023 and Node's
 * types, which do not declare it; Node provides it at run time).
 */
export interface WasmModule {
  readonly __wasmModule?: never;
}
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}
export interface WasmInstance {
  readonly exports: Readonly<Record<string, unknown>>;
}
declare const WebAssembly: {
  readonly Module: new (bytes: Uint8Array) => WasmModule;
  readonly Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  readonly Instance: new (
    module: WasmModule,
    imports: Record<string, Record<string, unknown>>,
  ) => WasmInstance;
  readonly validate: (bytes: Uint8Array) => boolean;
};
export const Wasm = WebAssembly;

export const PAGE_BYTES = 65536;
/** Pages a 32-bit WebAssembly memory can have: 4 GiB. Only touched pages are resident. */
export const WASM32_MAX_PAGES = 65536;

const MAGIC_AND_VERSION = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
/** Section ids (WebAssembly core specification §5.5.2). */
const SECTION = { custom: 0, type: 1, import: 2, function: 3, export: 7, code: 10 } as const;
/** Subsections of the name section (§7.4.1). */
const NAME_SUBSECTION = { functions: 1, locals: 2 } as const;
const FUNCTION_TYPE = 0x60;
const EXPORT_FUNCTION = 0x00;
const IMPORT_MEMORY = 0x02;
const LIMITS = { min: 0x00, minMaxShared: 0x03 } as const;

function section(id: number, content: readonly number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

/** A function of a module being built: its name, type and named locals (parameters first). */
export class FunctionBuilder {
  readonly name: string;
  private readonly paramTypes: ValueType[] = [];
  private readonly results: readonly ValueType[];
  private readonly localTypes: ValueType[] = [];
  private readonly names: string[] = [];

  constructor(functionName: string, results: readonly ValueType[] = []) {
    this.name = functionName;
    this.results = results;
  }

  /** Declares parameters, in order; their indices by name. Before any local. */
  params<const N extends string>(type: ValueType, names: readonly N[]): Record<N, number> {
    if (this.localTypes.length > 0) throw new Error(`${this.name}: parameters come before locals`);
    return this.declare(names, () => this.paramTypes.push(type));
  }

  /** Allocates locals of one type, in order; their indices by name. */
  locals<const N extends string>(type: ValueType, names: readonly N[]): Record<N, number> {
    return this.declare(names, () => this.localTypes.push(type));
  }

  /** `count` locals of one type named `prefix`0, `prefix`1, …; their indices in order. */
  localRun(type: ValueType, prefix: string, count: number): number[] {
    const names = Array.from({ length: count }, (_, k) => `${prefix}${k}`);
    const byName = this.locals(type, names);
    return names.map((local) => byName[local] as number);
  }

  /** The encoded function type. */
  typeBytes(): number[] {
    return [FUNCTION_TYPE, ...vec(this.paramTypes.map((t) => [t])), ...vec(this.results.map((t) => [t]))];
  }

  /** The body: local declarations (runs of one type) and `code`, length-prefixed. */
  body(code: readonly number[]): number[] {
    const runs: [number, ValueType][] = [];
    for (const type of this.localTypes) {
      const last = runs[runs.length - 1];
      if (last !== undefined && last[1] === type) last[0]++;
      else runs.push([1, type]);
    }
    const bytes = [...vec(runs.map(([count, type]) => [...uleb(count), type])), ...code];
    return [...uleb(bytes.length), ...bytes];
  }

  /** Every parameter's and local's name, by index. */
  localNames(): readonly string[] {
    return this.names;
  }

  private declare<N extends string>(names: readonly N[], push: () => void): Record<N, number> {
    const byName = {} as Record<N, number>;
    for (const local of names) {
      if (this.names.includes(local)) throw new Error(`${this.name}: local ${local} is declared twice`);
      byName[local] = this.names.length;
      this.names.push(local);
      push();
    }
    return byName;
  }
}

/** A function with its code, as a module takes it. */
export interface BuiltFunction {
  readonly builder: FunctionBuilder;
  readonly code: readonly number[];
  /** Exported under its name unless false. */
  readonly exported?: boolean;
}

/** The memory a module imports as env.memory: unshared with a minimum, or shared with both limits. */
export type MemoryImport = { readonly shared: false; readonly min: number } | SharedMemoryImport;
export interface SharedMemoryImport {
  readonly shared: true;
  readonly min: number;
  readonly max: number;
}

/**
 * The bytes of a module of `functions` (indices in order; identical types shared, numbered in order
 * of first use), importing `memory` where given, and ending in its name section.
 */
export function moduleBytes(functions: readonly BuiltFunction[], memory?: MemoryImport): Uint8Array {
  const types: string[] = [];
  const typeIndex = functions.map(({ builder }) => {
    const key = builder.typeBytes().join(',');
    if (!types.includes(key)) types.push(key);
    return types.indexOf(key);
  });
  const exported = functions.flatMap(({ builder, exported }, index) =>
    exported === false ? [] : [[...name(builder.name), EXPORT_FUNCTION, ...uleb(index)]],
  );
  return Uint8Array.from([
    ...MAGIC_AND_VERSION,
    ...section(SECTION.type, vec(types.map((key) => key.split(',').map(Number)))),
    ...(memory === undefined ? [] : section(SECTION.import, vec([memoryImport(memory)]))),
    ...section(SECTION.function, vec(typeIndex.map((index) => uleb(index)))),
    ...(exported.length === 0 ? [] : section(SECTION.export, vec(exported))),
    ...section(SECTION.code, vec(functions.map(({ builder, code }) => builder.body(code)))),
    ...nameSection(functions.map(({ builder }) => builder)),
  ]);
}

function memoryImport(memory: MemoryImport): number[] {
  const limits = memory.shared
    ? [LIMITS.minMaxShared, ...uleb(memory.min), ...uleb(memory.max)]
    : [LIMITS.min, ...uleb(memory.min)];
  return [...name('env'), ...name('memory'), IMPORT_MEMORY, ...limits];
}

/** The custom section "name": function names, then each function's local names. */
function nameSection(functions: readonly FunctionBuilder[]): number[] {
  const functionNames = vec(functions.map((f, index) => [...uleb(index), ...name(f.name)]));
  const localNames = vec(
    functions.map((f, index) => [
      ...uleb(index),
      ...vec(f.localNames().map((local, localIndex) => [...uleb(localIndex), ...name(local)])),
    ]),
  );
  return section(SECTION.custom, [
    ...name('name'),
    ...section(NAME_SUBSECTION.functions, functionNames),
    ...section(NAME_SUBSECTION.locals, localNames),
  ]);
}

/**
 * The module's bytes without its trailing name section: exactly what the kernels' hand-assembled
 * bytecode was before the builder (the golden hashes of test/unit/kernel-golden.test.ts).
 */
export function withoutNameSection(bytes: Uint8Array): Uint8Array {
  let at = MAGIC_AND_VERSION.length;
  while (at < bytes.length) {
    const id = bytes[at] as number;
    let size = 0;
    let shift = 0;
    let p = at + 1;
    for (;;) {
      const byte = bytes[p++] as number;
      size += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if ((byte & 0x80) === 0) break;
    }
    if (id === SECTION.custom && p + size === bytes.length) return bytes.subarray(0, at);
    at = p + size;
  }
  return bytes;
}

/** What a kernel module needs of the engine beyond WebAssembly 1.0. */
export type WasmFeature = 'simd' | 'shared-memory';

const featureProbes: Record<WasmFeature, () => Uint8Array> = {
  simd: () => {
    const probe = new FunctionBuilder('probe_simd');
    probe.locals(V128, ['vector']);
    return moduleBytes([{ builder: probe, code: op.end, exported: false }]);
  },
  'shared-memory': () => moduleBytes([], { shared: true, min: 1, max: 1 }),
};

const featureSupport = new Map<WasmFeature, boolean>();

/** Whether this engine validates a module that uses `feature` (a small probe module, asked once). */
export function hasWasmFeature(feature: WasmFeature): boolean {
  let supported = featureSupport.get(feature);
  if (supported === undefined) {
    supported = Wasm.validate(featureProbes[feature]());
    featureSupport.set(feature, supported);
  }
  return supported;
}

/**
 * A module compiled on first use from `bytes`, or null where this engine lacks one of `needs`
 * (the callers fall back to other code). A module that fails to compile on an engine with every
 * feature is a bug in its listing: that error is thrown, never hidden.
 */
export function compiledOnce(
  moduleName: string,
  needs: readonly WasmFeature[],
  bytes: () => Uint8Array,
): () => WasmModule | null {
  let compiled: WasmModule | null | undefined;
  return () => {
    if (compiled === undefined) {
      compiled = needs.every(hasWasmFeature) ? compile(moduleName, bytes()) : null;
    }
    return compiled;
  };
}

/** Compiles a kernel module; a failure names the module. */
export function compile(moduleName: string, bytes: Uint8Array): WasmModule {
  try {
    return new Wasm.Module(bytes);
  } catch (error) {
    throw new SupsupError('E_INTERNAL', `the WebAssembly module ${moduleName} does not compile`, {
      cause: error,
    });
  }
}
