/**
 * A standalone model: one task's mask from a `task` archive on the archive's network, with its input
 * transform. It classifies records as the daemon does for that task: the archived standardisation, then the
 * mask's forward pass (SupermaskEngine.classify), one result per record in the daemon's result format.
 */
import { decodeMask } from '../codec/mask-codec.js';
import { standardiseRows } from '../discovery/input-transform.js';
import { SupermaskEngine } from '../model/engine.js';
import type { Classification } from '../model/network/index.js';
import { defaultOptimizer } from '../model/training/optimizers.js';
import type { InputRecord, ResultRecord } from '../records.js';
import type { ModelArchive } from './format.js';

export class StandaloneModel {
  readonly archive: ModelArchive;
  private readonly engine: SupermaskEngine;
  private readonly centre: Float32Array | null;
  private readonly scale: Float32Array | null;

  constructor(archive: ModelArchive) {
    this.archive = archive;
    this.engine = new SupermaskEngine({
      arch: archive.arch,
      seed: archive.seed,
      // Neither is used: nothing trains here.
      optimizer: defaultOptimizer('rmsprop'),
      rule: { kind: 'threshold' },
    });
    const { packed } = decodeMask(archive.task.mask, {
      archKey: this.engine.archKey,
      totalBytes: this.engine.layout.totalBytes,
    });
    this.engine.addMask(packed);
    const transform = archive.transform;
    this.centre = transform.mode === 'off' ? null : Float32Array.from(transform.centre);
    this.scale = transform.mode === 'off' ? null : Float32Array.from(transform.scale);
  }

  get inputs(): number {
    return this.archive.arch.inputs;
  }

  get realClasses(): number {
    return this.archive.arch.realClasses;
  }

  get task(): number {
    return this.archive.task.meta.task;
  }

  /** Classifies `rows` raw rows of x (row-major; x is not changed). */
  classifyRows(raw: Float32Array, rows: number): Classification {
    const x = Float32Array.from(raw.subarray(0, rows * this.inputs));
    const transform = this.archive.transform;
    if (transform.mode === 'standardise' && this.centre !== null && this.scale !== null) {
      standardiseRows(x, rows, this.centre, this.scale, transform.clip);
    }
    return this.engine.classify(x, 0);
  }

  /** One result per record, in order, as the daemon writes them for this task. */
  classify(records: readonly InputRecord[]): ResultRecord[] {
    if (records.length === 0) return [];
    const d = this.inputs;
    const x = new Float32Array(records.length * d);
    for (const [i, record] of records.entries()) x.set(record.x, i * d);
    const out = this.classifyRows(x, records.length);
    const { meta } = this.archive.task;
    return records.map((record, i) => ({
      id: record.id,
      source: record.position,
      task: meta.task,
      newTask: false,
      taskConfidence: 1,
      confidence: out.confidences[i] as number,
      entropy: out.entropies[i] as number,
      prediction: out.predictions[i] as number,
      maskVersion: meta.version,
    }));
  }

  dispose(): void {
    this.engine.dispose();
  }
}
