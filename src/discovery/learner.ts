import type { SupermaskEngine } from '../model/engine.js';
import type { Classification } from '../model/network/classification.js';
import { RandomStream } from '../model/network/prng.js';
import type { Objective } from '../model/training/objectives.js';
import type { LabelledBatch, ScoreTrainer } from '../model/training/trainer.js';
import type { TrainingState } from '../model/training/training-state.js';
import type { DaemonEvent, InputRecord, ResultRecord, SourcePosition } from '../records.js';
import {
  advance,
  afterEntropy,
  type Decision,
  decideFromGradient,
  INITIAL_STATE,
  type PolicyConfig,
  type PolicyState,
  padsNeeded,
  precheck,
} from './policy.js';

export interface LearnerConfig {
  readonly policy: PolicyConfig;
  readonly objective: Objective;
  /** Optimizer steps per labelled batch, each on a batch drawn from the replay buffer. */
  readonly stepsPerBatch: number;
  /** Labelled batches of the current task kept for replay. */
  readonly replayBatches: number;
  /** Rows per training step. */
  readonly trainBatchSize: number;
  /** A mask stops training (its scores are dropped) after this many steps; 0 = never. */
  readonly freezeAfterSteps: number;
}

export const DEFAULT_LEARNER: Omit<LearnerConfig, 'policy'> = {
  objective: 'H',
  stepsPerBatch: 8,
  replayBatches: 16,
  trainBatchSize: 128,
  freezeAfterSteps: 4000,
};

/** What the daemon knows of a task. Structurally the store's TaskMeta. */
export interface LearnedTask {
  readonly task: number;
  readonly version: number;
  readonly frozen: boolean;
  readonly trainSteps: number;
  readonly bornAt: SourcePosition;
  readonly bornTime: string;
  readonly checksum: number;
}

export interface BatchOutcome {
  readonly results: ResultRecord[];
  readonly events: DaemonEvent[];
  /** Tasks whose mask (and training state) changed in this batch. */
  readonly changed: ReadonlySet<number>;
  readonly decision: Decision;
  /** Whether the full ∂H/∂α check ran. */
  readonly checked: boolean;
  /** Where the time went (for metrics; decisions never depend on it). */
  readonly work: {
    readonly inferSeconds: number;
    readonly trainSteps: number;
    readonly trainSeconds: number;
  };
}

/** The recent labelled batches of one task. */
type ReplayBuffer = LabelledBatch[];

/** Replay buffers kept for this many recently trained tasks. */
const REPLAY_TASKS = 8;

/** Policy state of every stream, as persisted between runs. */
export type StreamStates = Readonly<Record<string, PolicyState>>;

/**
 * Learns from a stream without task labels: per micro-batch it asks the policy whether to keep the
 * current task, check all masks, or allocate; trains the chosen mask on the batch's labelled rows
 * (several steps drawn from a replay buffer of the current task); classifies every row. One live
 * trainer at a time; the training state of other unfrozen masks is kept as plain arrays.
 */
export class StreamLearner {
  private readonly engine: SupermaskEngine;
  private readonly config: LearnerConfig;
  private readonly streams = new Map<string, PolicyState>();
  private readonly tasks: LearnedTask[];
  private readonly saved = new Map<number, TrainingState>();
  private live: { task: number; trainer: ScoreTrainer } | null = null;
  private readonly replay = new Map<number, ReplayBuffer>();
  /**
   * The rows of the micro-batch being processed, reused from batch to batch: a fresh 400 KB array
   * per LeNet batch of 128 was a third of the daemon's ArrayBuffer allocations, each of which
   * brings V8's next external-memory garbage collection closer. Nothing keeps it past `process`.
   */
  private rows = new Float32Array(0);

  constructor(
    engine: SupermaskEngine,
    config: LearnerConfig,
    restored?: {
      readonly tasks: readonly LearnedTask[];
      readonly streams: StreamStates;
      readonly training: ReadonlyMap<number, TrainingState>;
    },
  ) {
    this.engine = engine;
    this.config = config;
    for (const [stream, state] of Object.entries(restored?.streams ?? {})) this.streams.set(stream, state);
    this.tasks = [...(restored?.tasks ?? [])];
    for (const [task, state] of restored?.training ?? []) this.saved.set(task, state);
  }

  /** The policy state of every stream seen so far. */
  get streamStates(): StreamStates {
    return Object.fromEntries(this.streams);
  }

  /** The task a stream is on, or null. */
  currentTask(stream: string): number | null {
    return this.streams.get(stream)?.current ?? null;
  }

  get learnedTasks(): readonly LearnedTask[] {
    return this.tasks;
  }

  /** Training state of an unfrozen mask (the live one is exported from its trainer), else null. */
  trainingState(task: number): TrainingState | null {
    if (this.live !== null && this.live.task === task) return this.live.trainer.exportState();
    return this.saved.get(task) ?? null;
  }

  /** Sets the checksum of a task's encoded mask (computed by whoever encodes it). */
  setChecksum(task: number, checksum: number): void {
    const meta = this.tasks[task];
    if (meta !== undefined) this.tasks[task] = { ...meta, checksum };
  }

  /**
   * Handles one micro-batch. With `learn: false` (a batch whose state changes were already applied
   * before a restart) it only infers and classifies: no allocation, no training, no state change.
   */
  process(
    records: readonly InputRecord[],
    options: { readonly learn: boolean; readonly now: string; readonly stream: string },
  ): BatchOutcome {
    const x = this.batchRows(records);
    const labelled = records.filter((r) => r.y !== undefined);
    if (!options.learn) return this.inferOnly(records, x);

    const at = (records[records.length - 1] as InputRecord).position;
    const state: PolicyState = {
      ...(this.streams.get(options.stream) ?? INITIAL_STATE),
      masks: this.tasks.length,
    };
    const inferStarted = performance.now();
    const { decision, checked, entropy, current } = this.decide(state, x, labelled.length > 0);
    const inferSeconds = (performance.now() - inferStarted) / 1000;
    let trainSteps = 0;
    let trainSeconds = 0;
    const events: DaemonEvent[] = [];
    const changed = new Set<number>();
    let newTask = false;
    let task: number;
    if (decision.kind === 'allocate') {
      task = this.allocate(at, options.now);
      newTask = true;
      changed.add(task);
      events.push({ type: 'task_discovered', task, at, time: options.now });
      if (this.tasks.length === this.config.policy.budget) {
        events.push({ type: 'budget_reached', masks: this.tasks.length, at, time: options.now });
      }
    } else {
      task = decision.task;
    }
    let trained = false;
    if (labelled.length > 0 && !(this.tasks[task] as LearnedTask).frozen) {
      trained = true;
      const trainStarted = performance.now();
      this.train(task, labelled);
      trainSteps = this.config.stepsPerBatch;
      trainSeconds = (performance.now() - trainStarted) / 1000;
      changed.add(task);
      const meta = this.tasks[task] as LearnedTask;
      if (this.config.freezeAfterSteps > 0 && meta.trainSteps >= this.config.freezeAfterSteps) {
        this.freeze(task);
        events.push({ type: 'mask_frozen', task, steps: meta.trainSteps, time: options.now });
      }
    }
    // The entropy check already classified the batch under the current mask: when the batch stays
    // on that mask and did not train it, that classification is the result (one forward pass, not two).
    const classification =
      current !== undefined && current.task === task && !trained
        ? current.classification
        : this.engine.classify(x, task);
    const meanEntropy = entropy ?? mean(classification.entropies);
    this.streams.set(
      options.stream,
      advance(
        state,
        decision,
        { labelled: labelled.length > 0, entropy: meanEntropy, checked },
        this.config.policy,
      ),
    );
    const version = (this.tasks[task] as LearnedTask).version;
    const results = records.map((r, i) => ({
      id: r.id,
      source: r.position,
      task,
      newTask,
      confidence: classification.confidences[i] as number,
      entropy: classification.entropies[i] as number,
      prediction: classification.predictions[i] as number,
      maskVersion: version,
    }));
    return { results, events, changed, decision, checked, work: { inferSeconds, trainSteps, trainSeconds } };
  }

  /** The records' feature vectors one after the other, in the reused batch array. */
  private batchRows(records: readonly InputRecord[]): Float32Array {
    const dim = this.engine.arch.inputs;
    const length = records.length * dim;
    if (this.rows.length < length) this.rows = new Float32Array(length);
    const x = this.rows.subarray(0, length);
    records.forEach((r, i) => {
      x.set(r.x, i * dim);
    });
    return x;
  }

  dispose(): void {
    this.live?.trainer.dispose();
    this.live = null;
  }

  private decide(
    state: PolicyState,
    x: Float32Array,
    labelled: boolean,
  ): {
    decision: Decision;
    checked: boolean;
    entropy?: number;
    /** The batch classified under the current task's mask, when the entropy check computed it. */
    current?: { readonly task: number; readonly classification: Classification };
  } {
    const pre = precheck(state, this.config.policy);
    const current = state.current ?? 0;
    if (pre.kind === 'allocate') {
      return { decision: { kind: 'allocate', confidence: 0, reason: pre.reason }, checked: false };
    }
    if (pre.kind === 'keep') {
      return {
        decision: { kind: 'route', task: current, confidence: 1, reason: pre.reason },
        checked: false,
      };
    }
    let entropy: number | undefined;
    let classified: { readonly task: number; readonly classification: Classification } | undefined;
    if (pre.kind === 'entropy') {
      const classification = this.engine.classify(x, current);
      classified = { task: current, classification };
      entropy = mean(classification.entropies);
      if (afterEntropy(state, entropy, this.config.policy) === 'keep') {
        return {
          decision: { kind: 'route', task: current, confidence: 1, reason: 'fast_path' },
          checked: false,
          entropy,
          current: classified,
        };
      }
    }
    const rows = Math.floor(x.length / this.engine.arch.inputs);
    const gradient = this.engine.paddedAlphaGradient(
      x,
      rows,
      this.config.objective,
      padsNeeded(this.tasks.length, this.config.policy),
    );
    const decision = decideFromGradient(state, gradient, this.config.policy, labelled);
    // The band follows the entropy of the task the batch ends up on.
    const routed = decision.kind === 'route' && decision.task !== state.current ? undefined : entropy;
    return { decision, checked: true, entropy: routed, current: classified };
  }

  /**
   * Runs a full check and the classification of each stream's current task once, on `rows` rows
   * of zeros, and changes nothing (the results are dropped; what stays are caches whose contents
   * depend only on the state). So the first batch after a start does not pay for one-time work:
   * kernel compilation, the superposed weights, the cached effective weights of the current tasks.
   */
  warmUp(rows: number): void {
    if (this.tasks.length === 0 || rows <= 0) return;
    const x = new Float32Array(rows * this.engine.arch.inputs);
    const pads = padsNeeded(this.tasks.length, this.config.policy);
    this.engine.paddedAlphaGradient(x, rows, this.config.objective, pads);
    const current = new Set<number>();
    for (const { current: task } of this.streams.values()) {
      if (task !== null && task < this.tasks.length) current.add(task);
    }
    for (const task of current) this.engine.classify(x, task);
  }

  /**
   * Task inference (one-shot over all masks) and classification of `rows` inputs, changing nothing:
   * for repeated batches and for ad-hoc requests. Throws E_NO_MASKS before the first mask.
   */
  infer(x: Float32Array, rows: number): { task: number; inferSeconds: number } & Classification {
    const started = performance.now();
    const inferred = this.engine.inferTask(x, {
      method: 'one-shot',
      objective: this.config.objective,
      bprime: rows,
    });
    const inferSeconds = (performance.now() - started) / 1000;
    return { task: inferred.task, inferSeconds, ...this.engine.classify(x, inferred.task) };
  }

  private inferOnly(records: readonly InputRecord[], x: Float32Array): BatchOutcome {
    const inferred = this.infer(x, records.length);
    const classification = inferred;
    const version = (this.tasks[inferred.task] as LearnedTask).version;
    return {
      results: records.map((r, i) => ({
        id: r.id,
        source: r.position,
        task: inferred.task,
        newTask: false,
        confidence: classification.confidences[i] as number,
        entropy: classification.entropies[i] as number,
        prediction: classification.predictions[i] as number,
        maskVersion: version,
      })),
      events: [],
      changed: new Set(),
      decision: { kind: 'route', task: inferred.task, confidence: 1, reason: 'confident' },
      checked: true,
      work: { inferSeconds: inferred.inferSeconds, trainSteps: 0, trainSeconds: 0 },
    };
  }

  private allocate(at: SourcePosition, now: string): number {
    const task = this.tasks.length;
    const scores = this.engine.initialScores(task, 'kaiming');
    this.makeLive(task, { scores, optimizer: { steps: 0, slots: {} } });
    const packed = (this.live as { trainer: ScoreTrainer }).trainer.packedMask();
    const index = this.engine.addMask(packed);
    if (index !== task) throw new Error(`mask bank index ${index} does not match task ${task}`);
    this.tasks.push({
      task,
      version: 1,
      frozen: false,
      trainSteps: 0,
      bornAt: at,
      bornTime: now,
      checksum: 0,
    });
    return task;
  }

  private train(task: number, labelled: readonly InputRecord[]): void {
    this.makeLive(task, this.saved.get(task) ?? null);
    this.remember(task, labelled);
    const trainer = (this.live as { trainer: ScoreTrainer }).trainer;
    const meta = this.tasks[task] as LearnedTask;
    for (let s = 0; s < this.config.stepsPerBatch; s++)
      trainer.step(this.drawReplayBatch(task, meta.trainSteps + s));
    this.engine.replaceMask(task, trainer.packedMask());
    this.tasks[task] = {
      ...meta,
      version: meta.version + 1,
      trainSteps: meta.trainSteps + this.config.stepsPerBatch,
    };
  }

  private freeze(task: number): void {
    if (this.live?.task === task) {
      this.live.trainer.dispose();
      this.live = null;
    }
    this.saved.delete(task);
    const meta = this.tasks[task] as LearnedTask;
    this.tasks[task] = { ...meta, frozen: true };
  }

  /** Makes `task` the live trainer; the previous live trainer's state is saved as arrays. */
  private makeLive(task: number, state: TrainingState | null): void {
    if (this.live?.task === task) return;
    if (this.live !== null) {
      this.saved.set(this.live.task, this.live.trainer.exportState());
      this.live.trainer.dispose();
      this.live = null;
    }
    const resume = state ?? this.saved.get(task);
    if (resume === undefined || resume === null) {
      throw new Error(`no training state for task ${task}`);
    }
    const optimizer = resume.optimizer.steps > 0 ? resume.optimizer : undefined;
    this.live = { task, trainer: this.engine.createTrainer(resume.scores, optimizer) };
    this.saved.delete(task);
  }

  private remember(task: number, labelled: readonly InputRecord[]): void {
    const buffer = this.replay.get(task) ?? [];
    this.replay.delete(task);
    this.replay.set(task, buffer);
    while (this.replay.size > REPLAY_TASKS) this.replay.delete(this.replay.keys().next().value as number);
    const dim = this.engine.arch.inputs;
    const x = new Float32Array(labelled.length * dim);
    const y = new Int32Array(labelled.length);
    labelled.forEach((r, i) => {
      x.set(r.x, i * dim);
      y[i] = r.y as number;
    });
    buffer.push({ x, y, rows: labelled.length });
    if (buffer.length > this.config.replayBatches) buffer.shift();
  }

  /** A training batch drawn uniformly from the replay buffer's rows, seeded by (task, step). */
  private drawReplayBatch(task: number, step: number): LabelledBatch {
    const buffer = this.replay.get(task) as ReplayBuffer;
    const total = buffer.reduce((n, b) => n + b.rows, 0);
    const rows = this.config.trainBatchSize;
    const dim = this.engine.arch.inputs;
    const stream = new RandomStream(this.engine.seed, 'replay', task, step * Math.ceil(rows / 4));
    const x = new Float32Array(rows * dim);
    const y = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
      let pick = stream.nextInt(total);
      let b = 0;
      while (pick >= (buffer[b] as LabelledBatch).rows) {
        pick -= (buffer[b] as LabelledBatch).rows;
        b++;
      }
      const source = buffer[b] as LabelledBatch;
      x.set(source.x.subarray(pick * dim, (pick + 1) * dim), r * dim);
      y[r] = source.y[pick] as number;
    }
    return { x, y, rows };
  }
}

function mean(values: Float32Array): number {
  let sum = 0;
  for (const v of values) sum += v;
  return values.length === 0 ? 0 : sum / values.length;
}
