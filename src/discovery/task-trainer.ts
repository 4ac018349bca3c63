import type { SupermaskEngine } from '../model/engine.js';
import { RandomStream } from '../model/network/prng.js';
import type { LabelledBatch, ScoreTrainer } from '../model/training/trainer.js';
import type { TrainingState } from '../model/training/training-state.js';
import type { SourcePosition } from '../records.js';

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

export interface TrainingSchedule {
  /** Optimizer steps per labelled batch, each on a batch drawn from the replay buffer. */
  readonly stepsPerBatch: number;
  /**
   * Steps per labelled batch once the task's loss band has settled (its loss no longer falls fast):
   * a learned mask keeps up with its task at a fraction of the cost.
   */
  readonly settledSteps: number;
  /** Labelled batches of the current task kept for replay. */
  readonly replayBatches: number;
  /** Rows per training step. */
  readonly trainBatchSize: number;
  /** A mask stops training (its scores are dropped) after this many steps; 0 = never. */
  readonly freezeAfterSteps: number;
}

/** The recent labelled batches of one task. */
type ReplayBuffer = LabelledBatch[];

/** How one task's replay buffer changed since the last {@link TaskTrainers.drainReplayWrites}. */
export interface ReplayChange {
  readonly task: number;
  /** Batches added at the end of the buffer, oldest first. */
  readonly append: readonly LabelledBatch[];
  /** Batches the buffer holds now (the last `keep` of the old ones and `append`); 0 once it was dropped. */
  readonly keep: number;
}

/** Replay buffers kept for this many recently trained tasks. */
const REPLAY_TASKS = 8;

/**
 * The masks being learned: allocation, training on labelled rows (several steps drawn from a
 * replay buffer of the task's recent batches), freezing. One live trainer at a time; the training
 * state of the other unfrozen masks is kept as plain arrays.
 */
export class TaskTrainers {
  private readonly engine: SupermaskEngine;
  private readonly schedule: TrainingSchedule;
  readonly tasks: LearnedTask[];
  private readonly saved = new Map<number, TrainingState>();
  private live: { task: number; trainer: ScoreTrainer } | null = null;
  /** Replay buffers, least recently trained task first. */
  private readonly replay = new Map<number, ReplayBuffer>();
  /** Per task whose buffer changed since the last drain: the batches appended to it since then. */
  private readonly replayChanges = new Map<number, number>();

  constructor(
    engine: SupermaskEngine,
    schedule: TrainingSchedule,
    restored?: {
      readonly tasks: readonly LearnedTask[];
      readonly training: ReadonlyMap<number, TrainingState>;
      /** Replay buffers as persisted, least recently trained task first. */
      readonly replay?: ReadonlyMap<number, readonly LabelledBatch[]>;
    },
  ) {
    this.engine = engine;
    this.schedule = schedule;
    this.tasks = [...(restored?.tasks ?? [])];
    for (const [task, state] of restored?.training ?? []) this.saved.set(task, state);
    for (const [task, batches] of restored?.replay ?? []) {
      this.replay.set(task, batches.slice(Math.max(0, batches.length - schedule.replayBatches)));
    }
  }

  /** The tasks that have a replay buffer, least recently trained first (persisted, with the buffers). */
  get replayOrder(): number[] {
    return [...this.replay.keys()];
  }

  /**
   * How the replay buffers changed since the last call, for the commit that persists them (a restart then trains
   * on exactly the rows an uninterrupted run would).
   */
  drainReplayWrites(): ReplayChange[] {
    const changes: ReplayChange[] = [];
    for (const [task, appended] of [...this.replayChanges].sort(([a], [b]) => a - b)) {
      const buffer = this.replay.get(task) ?? [];
      changes.push({
        task,
        append: buffer.slice(buffer.length - Math.min(appended, buffer.length)),
        keep: buffer.length,
      });
    }
    this.replayChanges.clear();
    return changes;
  }

  /** Training state of an unfrozen mask (the live one is exported from its trainer), else null. */
  trainingState(task: number): TrainingState | null {
    if (this.live !== null && this.live.task === task) return this.live.trainer.exportState();
    return this.saved.get(task) ?? null;
  }

  setChecksum(task: number, checksum: number): void {
    const meta = this.tasks[task];
    if (meta !== undefined) this.tasks[task] = { ...meta, checksum };
  }

  /** A new mask with the spec's initial scores, in the bank; returns its task id. */
  allocate(at: SourcePosition, now: string): number {
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

  /**
   * Trains `task` on a labelled batch (rows of x, labels y). Returns the steps taken and whether the
   * mask froze with them; a frozen mask is not trained.
   */
  /** Trains a task on a labelled batch: `stepsPerBatch` steps, or `settledSteps` once it has settled. */
  train(task: number, batch: LabelledBatch, settled: boolean): { steps: number; froze: boolean } {
    if ((this.tasks[task] as LearnedTask).frozen || batch.rows === 0) return { steps: 0, froze: false };
    this.makeLive(task, this.saved.get(task) ?? null);
    this.remember(task, batch);
    const trainer = (this.live as { trainer: ScoreTrainer }).trainer;
    const meta = this.tasks[task] as LearnedTask;
    const steps = settled ? this.schedule.settledSteps : this.schedule.stepsPerBatch;
    for (let s = 0; s < steps; s++) trainer.step(this.drawReplayBatch(task, meta.trainSteps + s));
    this.engine.replaceMask(task, trainer.packedMask());
    const trainSteps = meta.trainSteps + steps;
    this.tasks[task] = { ...meta, version: meta.version + 1, trainSteps };
    const froze = this.schedule.freezeAfterSteps > 0 && trainSteps >= this.schedule.freezeAfterSteps;
    if (froze) this.freeze(task);
    return { steps, froze };
  }

  dispose(): void {
    this.live?.trainer.dispose();
    this.live = null;
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
    if (resume === undefined || resume === null) throw new Error(`no training state for task ${task}`);
    const optimizer = resume.optimizer.steps > 0 ? resume.optimizer : undefined;
    this.live = { task, trainer: this.engine.createTrainer(resume.scores, optimizer) };
    this.saved.delete(task);
  }

  private remember(task: number, batch: LabelledBatch): void {
    const buffer = this.replay.get(task) ?? [];
    this.replay.delete(task);
    this.replay.set(task, buffer);
    while (this.replay.size > REPLAY_TASKS) {
      const dropped = this.replay.keys().next().value as number;
      this.replay.delete(dropped);
      this.replayChanges.set(dropped, 0);
    }
    buffer.push(batch);
    if (buffer.length > this.schedule.replayBatches) buffer.shift();
    this.replayChanges.set(task, (this.replayChanges.get(task) ?? 0) + 1);
  }

  /** A training batch drawn uniformly from the replay buffer's rows, seeded by (task, step). */
  private drawReplayBatch(task: number, step: number): LabelledBatch {
    const buffer = this.replay.get(task) as ReplayBuffer;
    const total = buffer.reduce((n, b) => n + b.rows, 0);
    const rows = this.schedule.trainBatchSize;
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
