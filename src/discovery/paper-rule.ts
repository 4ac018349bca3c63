/**
 * The paper's rule (spec §5.2, docs/discovery.md "The paper's rule"), applied to a whole micro-batch:
 * keep the current task during its warm-up and while its batch entropy stays in the fast-path band;
 * otherwise ν = softmax(−∂H/∂α) over the learned masks and untrained pads decides between routing
 * and allocating.
 */
import type { SupermaskEngine } from '../model/engine.js';
import type { Classification } from '../model/network/classification.js';
import type { Objective } from '../model/training/objectives.js';
import type { BatchRows } from './batch-rows.js';
import { type Assignment, range } from './evidence-rule.js';
import {
  afterEntropy,
  type Decision,
  decideFromGradient,
  type PolicyConfig,
  type PolicyState,
  padsNeeded,
  precheck,
} from './policy.js';

export interface PaperContext {
  readonly engine: SupermaskEngine;
  readonly batch: BatchRows;
  readonly state: PolicyState;
  readonly policy: PolicyConfig;
  readonly objective: Objective;
}

export function decideByPaperRule(context: PaperContext): Assignment {
  const { batch, state, policy, engine } = context;
  const pre = precheck(state, policy);
  const current = state.current ?? 0;
  const assign = (decision: Decision, checked: boolean, entropy?: number): Assignment => ({
    groups: [
      {
        rows: range(0, batch.rows),
        task: decision.kind === 'allocate' ? 'new' : decision.task,
        confidence: decision.confidence,
      },
    ],
    decision,
    checked,
    evidence: new Map(),
    ...(entropy === undefined ? {} : { entropy }),
  });
  if (pre.kind === 'allocate') return assign({ kind: 'allocate', confidence: 0, reason: pre.reason }, false);
  if (pre.kind === 'keep') {
    return assign({ kind: 'route', task: current, confidence: 1, reason: pre.reason }, false);
  }
  let entropy: number | undefined;
  if (pre.kind === 'entropy') {
    const classification: Classification = engine.classify(batch.x, current);
    entropy = mean(classification.entropies);
    if (afterEntropy(state, entropy, policy) === 'keep') {
      return assign({ kind: 'route', task: current, confidence: 1, reason: 'fast_path' }, false, entropy);
    }
  }
  const gradient = engine.paddedAlphaGradient(
    batch.x,
    batch.rows,
    context.objective,
    padsNeeded(engine.maskCount, policy),
  );
  const decision = decideFromGradient(state, gradient, policy, batch.labelled > 0);
  // The band follows the entropy of the task the batch ends up on.
  const routed = decision.kind === 'route' && decision.task !== state.current ? undefined : entropy;
  return assign(decision, true, routed);
}

function mean(values: Float32Array): number {
  let sum = 0;
  for (const v of values) sum += v;
  return values.length === 0 ? 0 : sum / values.length;
}
