/**
 * The learner's persisted state as JSON (kept in the registry's opaque `policy` field): the policy
 * state of every stream, every task's profile (its input model as base64 float32 arrays, its bands),
 * the input transform and the order of the replay buffers (the buffers are stored beside it).
 * Decoding validates everything; anything malformed is E_STORE_CORRUPT.
 */
import { z } from 'zod';
import { SupsupError } from '../errors.js';
import type { TaskProfile } from './evidence.js';
import type { InputTransformState } from './input-transform.js';
import type { LearnerSnapshot, StreamStates } from './learner.js';
import { INITIAL_STATE } from './policy.js';

const bandSchema = z.object({
  mean: z.number(),
  variance: z.number().min(0),
  observations: z.number().int().min(0),
});
const rowBandSchema = z.object({ mean: z.number(), variance: z.number().min(0), rows: z.number().min(0) });
export const policyStateSchema = z.object({
  masks: z.number().int().min(0),
  current: z.number().int().min(0).nullable(),
  sinceAllocation: z.number().int().min(0),
  sinceCheck: z.number().int().min(0),
  band: bandSchema,
  budgetReported: z.boolean(),
});
const profileSchema = z.object({
  input: z.object({ rows: z.number().min(0), mean: z.string(), m2: z.string() }),
  shiftBand: bandSchema,
  rowBand: rowBandSchema,
  lossBand: rowBandSchema,
  batches: z.number().int().min(0),
  lossTrail: z.array(z.number()),
  accuracy: rowBandSchema,
});
const transformSchema = z.object({
  features: z.number().int().positive(),
  count: z.number().int().min(0),
  frozen: z.boolean(),
  mean: z.array(z.number()),
  m2: z.array(z.number()),
});
const snapshotSchema = z.object({
  streams: z.record(z.string(), policyStateSchema),
  profiles: z.array(profileSchema).optional(),
  inputTransform: transformSchema.nullable().optional(),
  replayOrder: z.array(z.number().int().min(0)).optional(),
  learnedBatches: z.number().int().min(0).optional(),
});

export type EncodedProfile = z.infer<typeof profileSchema>;

/** The JSON form of the learner's snapshot (profiles and transform absent in stores of older versions). */
export interface LearnerSnapshotJson {
  readonly streams: StreamStates;
  readonly profiles?: readonly EncodedProfile[];
  readonly inputTransform?: InputTransformState | null;
  readonly replayOrder?: readonly number[];
  readonly learnedBatches?: number;
}

export function encodeLearnerSnapshot(snapshot: LearnerSnapshot): LearnerSnapshotJson {
  return {
    streams: snapshot.streams,
    profiles: snapshot.profiles.map(encodeProfile),
    inputTransform: snapshot.inputTransform,
    replayOrder: snapshot.replayOrder,
    learnedBatches: snapshot.learnedBatches,
  };
}

/** Validates and decodes the JSON form; `features` is the network's input width. */
export function decodeLearnerSnapshot(
  json: unknown,
  features: number,
  tasks: number,
): Partial<LearnerSnapshot> {
  const parsed = snapshotSchema.safeParse(json);
  if (!parsed.success) {
    throw new SupsupError(
      'E_STORE_CORRUPT',
      `the registry's learner state is malformed: ${parsed.error.message}`,
    );
  }
  const { streams, profiles, inputTransform, replayOrder, learnedBatches } = parsed.data;
  if (replayOrder !== undefined) checkReplayOrder(replayOrder, tasks);
  for (const [stream, state] of Object.entries(streams)) {
    if (state.masks > tasks) {
      throw new SupsupError(
        'E_STORE_CORRUPT',
        `stream ${stream} counts ${state.masks} masks, the registry has ${tasks}`,
      );
    }
  }
  if (profiles !== undefined && profiles.length !== tasks) {
    throw new SupsupError(
      'E_STORE_CORRUPT',
      `the registry has ${tasks} tasks but ${profiles.length} task profiles`,
    );
  }
  return {
    streams: streams as StreamStates,
    ...(profiles === undefined ? {} : { profiles: profiles.map((p, t) => decodeProfile(p, features, t)) }),
    ...(inputTransform === undefined ? {} : { inputTransform: inputTransform as InputTransformState | null }),
    ...(replayOrder === undefined ? {} : { replayOrder }),
    ...(learnedBatches === undefined ? {} : { learnedBatches }),
  };
}

function checkReplayOrder(order: readonly number[], tasks: number): void {
  const seen = new Set<number>();
  for (const task of order) {
    if (task >= tasks || seen.has(task)) {
      throw new SupsupError(
        'E_STORE_CORRUPT',
        `the registry's replay order names task ${task} ${seen.has(task) ? 'twice' : `of ${tasks} tasks`}`,
      );
    }
    seen.add(task);
  }
}

function encodeProfile(profile: TaskProfile): EncodedProfile {
  return {
    ...profile,
    lossTrail: [...profile.lossTrail],
    input: {
      rows: profile.input.rows,
      mean: floatsToBase64(profile.input.mean),
      m2: floatsToBase64(profile.input.m2),
    },
  };
}

function decodeProfile(encoded: EncodedProfile, features: number, task: number): TaskProfile {
  const mean = base64ToFloats(encoded.input.mean);
  const m2 = base64ToFloats(encoded.input.m2);
  if (mean.length !== features || m2.length !== features) {
    throw new SupsupError(
      'E_STORE_CORRUPT',
      `task ${task}'s input model has ${mean.length} features, the network ${features}`,
    );
  }
  return { ...encoded, input: { rows: encoded.input.rows, mean, m2 } };
}

function floatsToBase64(values: Float32Array): string {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');
}

function base64ToFloats(text: string): Float32Array {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length % 4 !== 0)
    throw new SupsupError('E_STORE_CORRUPT', 'a task input model is not float32 data');
  const out = new Float32Array(bytes.length / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/**
 * The learner's persisted JSON without its last task (`tasks` − 1, the id a registry of 0..k-1 can lose): its
 * profile and replay-order entry dropped, every stream's mask count lowered, and a stream whose current task it
 * was left with none (and the entropy band of that task reset), so its next batch is checked against every task.
 * Keys the learner does not own (the daemon's outbox) are kept. E_STORE_CORRUPT when the JSON is malformed.
 */
export function withoutLastTask(json: unknown, tasks: number): Record<string, unknown> {
  const parsed = snapshotSchema.safeParse(json);
  if (!parsed.success || tasks < 1) {
    throw new SupsupError('E_STORE_CORRUPT', `the registry's learner state is malformed or has no task`);
  }
  const removed = tasks - 1;
  const { streams, profiles, replayOrder } = parsed.data;
  const next = Object.fromEntries(
    Object.entries(streams).map(([stream, state]) => [
      stream,
      state.current === removed
        ? {
            ...state,
            masks: Math.min(state.masks, removed),
            current: null,
            sinceCheck: 0,
            band: INITIAL_STATE.band,
          }
        : { ...state, masks: Math.min(state.masks, removed) },
    ]),
  );
  return {
    ...(json as Record<string, unknown>),
    streams: next,
    ...(profiles === undefined ? {} : { profiles: profiles.slice(0, removed) }),
    ...(replayOrder === undefined ? {} : { replayOrder: replayOrder.filter((task) => task !== removed) }),
  };
}

/** The learner's persisted JSON with `task` taken out of the replay order (its log is about to be removed). */
export function withoutReplayOf(json: unknown, task: number): Record<string, unknown> {
  const parsed = snapshotSchema.safeParse(json);
  if (!parsed.success) throw new SupsupError('E_STORE_CORRUPT', `the registry's learner state is malformed`);
  const order = parsed.data.replayOrder;
  return order === undefined
    ? { ...(json as Record<string, unknown>) }
    : { ...(json as Record<string, unknown>), replayOrder: order.filter((t) => t !== task) };
}
