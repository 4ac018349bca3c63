import { SupsupError } from '../errors.js';
import type { SupermaskEngine } from '../model/engine.js';
import type { Classification } from '../model/network/classification.js';
import type { Objective } from '../model/training/objectives.js';
import type { LabelledBatch } from '../model/training/trainer.js';
import type { TrainingState } from '../model/training/training-state.js';
import type { DaemonEvent, InputRecord, ResultRecord } from '../records.js';
import { type BatchOutcome, candidatesOf, effectiveDecision, meanEntropy, pick } from './batch-outcome.js';
import { type BatchRows, batchRowsOf, groupRows, labelledBatch } from './batch-rows.js';
import {
  DEFAULT_EVIDENCE,
  type EvidenceConfig,
  learnRows,
  lossSettled,
  newProfile,
  shiftRatio,
  type TaskProfile,
} from './evidence.js';
import { type Assignment, decideByEvidence, type Group, range, taskEvidence } from './evidence-rule.js';
import {
  DEFAULT_STANDARDISE,
  InputTransform,
  type InputTransformState,
  type StandardiseConfig,
} from './input-transform.js';
import { decideByPaperRule } from './paper-rule.js';
import {
  advance,
  type Decision,
  INITIAL_STATE,
  type PolicyConfig,
  type PolicyState,
  padsNeeded,
} from './policy.js';
import { type LearnedTask, type ReplayChange, TaskTrainers, type TrainingSchedule } from './task-trainer.js';
import { noUsableAccuracy, type StreamWarning, unscaledInputs } from './warnings.js';

export type { BatchOutcome, Candidate } from './batch-outcome.js';
export type { BatchRows } from './batch-rows.js';
export type { LearnedTask, ReplayChange } from './task-trainer.js';
export type { StreamWarning } from './warnings.js';

/** Which new-task rule decides: the evidence rule (default) or the paper's entropy-gradient rule. */
export type DiscoveryRule = 'evidence' | 'paper';

export interface LearnerConfig extends TrainingSchedule {
  readonly rule: DiscoveryRule;
  /** The paper rule's settings; `budget` bounds the masks under either rule. */
  readonly policy: PolicyConfig;
  readonly evidence: EvidenceConfig;
  readonly objective: Objective;
  readonly standardise: StandardiseConfig;
}

export const DEFAULT_LEARNER: Omit<LearnerConfig, 'policy'> = {
  rule: 'evidence',
  evidence: DEFAULT_EVIDENCE,
  objective: 'H',
  stepsPerBatch: 8,
  settledSteps: 8,
  replayBatches: 16,
  trainBatchSize: 128,
  freezeAfterSteps: 4000,
  standardise: DEFAULT_STANDARDISE,
};

/** Policy state of every stream, as persisted between runs. */
export type StreamStates = Readonly<Record<string, PolicyState>>;

/** What the learner persists besides masks and training states (JSON). */
export interface LearnerSnapshot {
  readonly streams: StreamStates;
  readonly profiles: readonly TaskProfile[];
  readonly inputTransform: InputTransformState | null;
  /** Tasks with a replay buffer, least recently trained first (the buffers themselves are stored beside). */
  readonly replayOrder: readonly number[];
  /** Micro-batches learned so far, every stream together (numbers the decision log). */
  readonly learnedBatches: number;
}

/**
 * Learns from a stream without task labels: per micro-batch the rule (evidence or paper) assigns
 * the batch's rows to tasks (at most one change inside a batch), allocating a mask where no task
 * explains them; every assigned task with labelled rows trains on them; every row is classified
 * under its task.
 */
export class StreamLearner {
  private readonly engine: SupermaskEngine;
  private readonly config: LearnerConfig;
  private readonly streams = new Map<string, PolicyState>();
  private readonly trainers: TaskTrainers;
  private readonly profiles: TaskProfile[];
  private readonly transform: InputTransform;
  private learnedBatches: number;

  constructor(
    engine: SupermaskEngine,
    config: LearnerConfig,
    restored?: {
      readonly tasks: readonly LearnedTask[];
      readonly training: ReadonlyMap<number, TrainingState>;
      readonly snapshot: Partial<LearnerSnapshot>;
      /** Replay buffers in `snapshot.replayOrder`. */
      readonly replay?: ReadonlyMap<number, readonly LabelledBatch[]>;
    },
  ) {
    this.engine = engine;
    this.config = config;
    for (const [stream, state] of Object.entries(restored?.snapshot.streams ?? {}))
      this.streams.set(stream, state);
    this.trainers = new TaskTrainers(engine, config, restored);
    const inputs = engine.arch.inputs;
    this.profiles = [...(restored?.snapshot.profiles ?? [])];
    this.learnedBatches = restored?.snapshot.learnedBatches ?? 0;
    while (this.profiles.length < this.trainers.tasks.length) this.profiles.push(newProfile(inputs));
    const transformState = restored?.snapshot.inputTransform ?? undefined;
    this.transform = new InputTransform(config.standardise, inputs, transformState ?? undefined);
  }

  get streamStates(): StreamStates {
    return Object.fromEntries(this.streams);
  }

  /** Everything but masks and training states, for the registry. */
  snapshot(): LearnerSnapshot {
    return {
      streams: this.streamStates,
      profiles: this.profiles,
      inputTransform: this.transform.state(),
      replayOrder: this.trainers.replayOrder,
      learnedBatches: this.learnedBatches,
    };
  }

  /** How the replay buffers changed since the last call (what the next commit persists). */
  drainReplayWrites(): ReplayChange[] {
    return this.trainers.drainReplayWrites();
  }

  currentTask(stream: string): number | null {
    return this.streams.get(stream)?.current ?? null;
  }

  get learnedTasks(): readonly LearnedTask[] {
    return this.trainers.tasks;
  }

  /** Prequential accuracy of each task (labelled rows, before training on them), or null before any. */
  taskAccuracy(task: number): number | null {
    const band = this.profiles[task]?.accuracy;
    return band === undefined || band.rows === 0 ? null : band.mean;
  }

  /**
   * Why this stream's task assignments should not be trusted now (warnings.ts): unscaled inputs
   * while standardisation is off, or no task with a usable prequential accuracy. Empty when none.
   */
  warnings(): StreamWarning[] {
    const out: StreamWarning[] = [];
    if (this.transform.off) {
      const { mean, std } = this.transform.statistics();
      const unscaled = unscaledInputs(mean, std);
      if (unscaled !== null) out.push(unscaled);
    }
    const accuracies = this.profiles.map((p) => ({ accuracy: p.accuracy.mean, labelled: p.accuracy.rows }));
    const unusable = noUsableAccuracy(accuracies, this.engine.arch.realClasses);
    if (unusable !== null) out.push(unusable);
    return out;
  }

  /** Whether the input transform has finished fitting, and the rows it has seen. */
  get inputFit(): { readonly fitted: boolean; readonly records: number } {
    return { fitted: this.transform.fitted, records: this.transform.recordsSeen };
  }

  trainingState(task: number): TrainingState | null {
    return this.trainers.trainingState(task);
  }

  setChecksum(task: number, checksum: number): void {
    this.trainers.setChecksum(task, checksum);
  }

  /**
   * Handles one micro-batch. With `learn: false` (a batch whose state changes were already applied
   * before a restart) it only infers and classifies: no allocation, no training, no state change.
   */
  process(
    records: readonly InputRecord[],
    options: { readonly learn: boolean; readonly now: string; readonly stream: string },
  ): BatchOutcome {
    const batch = this.batchRows(records, options.learn);
    if (!options.learn) return this.inferOnly(records, batch);
    const state: PolicyState = {
      ...(this.streams.get(options.stream) ?? INITIAL_STATE),
      masks: this.trainers.tasks.length,
    };
    this.learnedBatches++;
    const inferStarted = performance.now();
    const assignment = this.decide(state, batch);
    const inferSeconds = (performance.now() - inferStarted) / 1000;
    return this.apply(records, batch, state, assignment, options, inferSeconds);
  }

  /**
   * Handles a micro-batch whose true task is known (the benchmark's oracle: the same network,
   * training schedule and input transform, told the task of every row).
   */
  processKnown(
    records: readonly InputRecord[],
    task: number | null,
    options: { readonly now: string },
  ): BatchOutcome {
    const batch = this.batchRows(records, true);
    this.learnedBatches++;
    const state: PolicyState = { ...INITIAL_STATE, masks: this.trainers.tasks.length, current: task };
    const decision: Decision =
      task === null
        ? { kind: 'allocate', confidence: 1, reason: 'first' }
        : { kind: 'route', task, confidence: 1, reason: 'confident' };
    const assignment: Assignment = {
      groups: [{ rows: range(0, batch.rows), task: task ?? 'new', confidence: 1 }],
      decision,
      checked: false,
      evidence: new Map(),
    };
    return this.apply(records, batch, state, assignment, { ...options, stream: 'oracle' }, 0);
  }

  private decide(state: PolicyState, batch: BatchRows): Assignment {
    const context = { engine: this.engine, batch, state, policy: this.config.policy };
    if (this.config.rule === 'paper')
      return decideByPaperRule({ ...context, objective: this.config.objective });
    return decideByEvidence({
      ...context,
      profiles: this.profiles,
      tasks: this.trainers.tasks,
      config: this.config.evidence,
      objective: this.config.objective,
    });
  }

  private apply(
    records: readonly InputRecord[],
    batch: BatchRows,
    state: PolicyState,
    assignment: Assignment,
    options: { readonly now: string; readonly stream: string },
    inferSeconds: number,
  ): BatchOutcome {
    const events: DaemonEvent[] = [];
    const changed = new Set<number>();
    const byRow = new Array<ResultRecord>(batch.rows);
    let trainSteps = 0;
    let trainSeconds = 0;
    let lastTask = state.current ?? 0;
    const prequential = { correct: 0, labelled: 0 };
    for (const group of assignment.groups) {
      const rows = groupRows(batch, group.rows, this.engine.arch.inputs);
      const isNew = group.task === 'new';
      const task = isNew
        ? this.allocateFor(records[group.rows[0] as number] as InputRecord, options.now, events)
        : (group.task as number);
      if (isNew) changed.add(task);
      const profile = this.profiles[task] as TaskProfile;
      const known = assignment.evidence.get(task);
      const evidence =
        known === undefined ? taskEvidence(this.engine, profile, task, rows) : pick(known, group.rows);
      const learns = group.learn !== false;
      const trainStarted = performance.now();
      const settled = lossSettled(profile, this.config.evidence);
      const trained = learns
        ? this.trainers.train(task, labelledBatch(rows, this.engine.arch.inputs), settled)
        : { steps: 0, froze: false };
      trainSteps += trained.steps;
      trainSeconds += (performance.now() - trainStarted) / 1000;
      if (trained.steps > 0) changed.add(task);
      if (trained.froze) {
        const steps = (this.trainers.tasks[task] as LearnedTask).trainSteps;
        events.push({ type: 'mask_frozen', task, steps, time: options.now });
      }
      if (learns && rows.labelled > 0) {
        const shift = shiftRatio(profile, rows, 0, rows.rows);
        const learned = {
          shift,
          distances: evidence.distances,
          losses: evidence.losses,
          correct: evidence.correct,
        };
        this.profiles[task] = learnRows(
          profile,
          { x: rows.raw, count: rows.rows },
          learned,
          this.config.evidence,
        );
        changed.add(task);
        for (const hit of evidence.correct) {
          if (Number.isNaN(hit)) continue;
          prequential.labelled++;
          prequential.correct += hit;
        }
      }
      const classification = this.engine.classify(rows.x, task);
      this.results(records, group, task, isNew, classification, byRow);
      if (group.rows.includes(batch.rows - 1)) lastTask = task;
    }
    const results = byRow;
    const decision = assignment.decision;
    const allocated = assignment.groups.some((g) => g.task === 'new');
    const next = advance(
      state,
      effectiveDecision(decision, allocated, lastTask),
      {
        labelled: batch.labelled > 0,
        entropy: assignment.entropy ?? meanEntropy(results),
        checked: assignment.checked,
      },
      this.config.policy,
    );
    this.streams.set(options.stream, { ...next, current: lastTask, masks: this.trainers.tasks.length });
    return {
      results,
      events,
      changed,
      decision,
      checked: assignment.checked,
      split: assignment.groups.length > 1 ? ((assignment.groups[1] as Group).rows[0] as number) : null,
      prequential,
      labelled: batch.labelled,
      sequence: this.learnedBatches,
      candidates: candidatesOf(assignment.evidence, batch.labels),
      work: { inferSeconds, trainSteps, trainSeconds },
    };
  }

  private allocateFor(first: InputRecord, now: string, events: DaemonEvent[]): number {
    const at = first.position;
    const task = this.trainers.allocate(at, now);
    this.profiles[task] = newProfile(this.engine.arch.inputs);
    events.push({ type: 'task_discovered', task, at, time: now });
    if (this.trainers.tasks.length === this.config.policy.budget) {
      events.push({ type: 'budget_reached', masks: this.trainers.tasks.length, at, time: now });
    }
    return task;
  }

  /** Writes the results of a group's rows into `out` at their rows. */
  private results(
    records: readonly InputRecord[],
    group: Group,
    task: number,
    isNew: boolean,
    classification: Classification,
    out: ResultRecord[],
  ): void {
    const version = (this.trainers.tasks[task] as LearnedTask).version;
    group.rows.forEach((row, j) => {
      const r = records[row] as InputRecord;
      out[row] = {
        id: r.id,
        source: r.position,
        task,
        newTask: isNew,
        taskConfidence: group.confidence,
        confidence: classification.confidences[j] as number,
        entropy: classification.entropies[j] as number,
        prediction: classification.predictions[j] as number,
        maskVersion: version,
      };
    });
  }

  /** The records' feature vectors, transformed, and their labels. */
  private batchRows(records: readonly InputRecord[], learn: boolean): BatchRows {
    return batchRowsOf(records, this.transform, learn, this.engine.arch.inputs);
  }

  dispose(): void {
    this.trainers.dispose();
  }

  /**
   * Runs task inference and the classification of each stream's current task once on zeros, and
   * changes nothing, so the first batch after a start does not pay for one-time work.
   */
  warmUp(rows: number): void {
    if (this.trainers.tasks.length === 0 || rows <= 0) return;
    const x = new Float32Array(rows * this.engine.arch.inputs);
    const pads =
      this.config.rule === 'paper' ? padsNeeded(this.trainers.tasks.length, this.config.policy) : 0;
    this.engine.paddedAlphaGradient(x, rows, this.config.objective, pads);
    const current = new Set<number>();
    for (const { current: task } of this.streams.values()) {
      if (task !== null && task < this.trainers.tasks.length) current.add(task);
    }
    for (const task of current) this.engine.classify(x, task);
  }

  /**
   * Task inference (one-shot over all masks) and classification of `rows` raw inputs, changing
   * nothing: for repeated batches and ad-hoc requests. Throws E_NO_MASKS before the first mask.
   */
  infer(raw: Float32Array, rows: number): { task: number; inferSeconds: number } & Classification {
    const x = Float32Array.from(raw.subarray(0, rows * this.engine.arch.inputs));
    this.transform.apply(x, rows);
    return this.inferTransformed(x, rows);
  }

  /**
   * Classification of `rows` raw inputs under the mask of `task` as it is now, through the input
   * transform, changing nothing (re-scoring records with the final masks).
   */
  classifyUnder(raw: Float32Array, rows: number, task: number): Classification {
    if (!Number.isInteger(task) || task < 0 || task >= this.trainers.tasks.length) {
      throw new SupsupError('E_BAD_ARGUMENT', `no task ${task} (${this.trainers.tasks.length} learned)`);
    }
    const x = Float32Array.from(raw.subarray(0, rows * this.engine.arch.inputs));
    this.transform.apply(x, rows);
    return this.engine.classify(x, task);
  }

  private inferTransformed(
    x: Float32Array,
    rows: number,
  ): { task: number; inferSeconds: number } & Classification {
    const started = performance.now();
    const inferred = this.engine.inferTask(x, {
      method: 'one-shot',
      objective: this.config.objective,
      bprime: rows,
    });
    const inferSeconds = (performance.now() - started) / 1000;
    return { task: inferred.task, inferSeconds, ...this.engine.classify(x, inferred.task) };
  }

  private inferOnly(records: readonly InputRecord[], batch: BatchRows): BatchOutcome {
    const inferred = this.inferTransformed(batch.x, batch.rows);
    const group: Group = { rows: range(0, batch.rows), task: inferred.task, confidence: 0.5 };
    const results = new Array<ResultRecord>(batch.rows);
    this.results(records, group, inferred.task, false, inferred, results);
    return {
      results,
      events: [],
      changed: new Set(),
      decision: { kind: 'route', task: inferred.task, confidence: 1, reason: 'confident' },
      checked: true,
      split: null,
      prequential: { correct: 0, labelled: 0 },
      labelled: batch.labelled,
      sequence: 0,
      candidates: [],
      work: { inferSeconds: inferred.inferSeconds, trainSteps: 0, trainSeconds: 0 },
    };
  }
}
