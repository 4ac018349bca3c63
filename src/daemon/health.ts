import { SupsupError } from '../errors.js';
import type { MaskStore } from '../store/types.js';

/** A store probe that does not answer within this time counts as unreachable. */
export const STORE_PROBE_TIMEOUT_MS = 1000;
/** How long a store's durability reading is trusted before readiness reads it again. */
const POLICY_RECHECK_MS = 10_000;

/**
 * The store's part of readiness: reachable within a second, and safe to write (MaskStore.durabilityProblem, re-read
 * at most every 10 s). Never throws.
 */
export class StoreProbe {
  private policyCheck: { at: number; problem: string | null } | null = null;

  constructor(
    private readonly store: MaskStore,
    private readonly allowVolatile: boolean,
  ) {}

  /** The store's problems now (empty when fine). */
  async problems(): Promise<string[]> {
    const reachable = await withTimeout(this.store.ping(), STORE_PROBE_TIMEOUT_MS, 'store ping').catch(
      () => false,
    );
    if (!reachable) return ['store unreachable'];
    const policy = await this.durability();
    return policy === null ? [] : [policy];
  }

  private async durability(): Promise<string | null> {
    const check = this.store.durabilityProblem?.bind(this.store);
    if (check === undefined) return null;
    if (this.policyCheck !== null && Date.now() - this.policyCheck.at < POLICY_RECHECK_MS) {
      return this.policyCheck.problem;
    }
    let problem: string | null;
    try {
      problem = await withTimeout(check(this.allowVolatile), STORE_PROBE_TIMEOUT_MS, 'store policy');
    } catch {
      return 'store unreachable';
    }
    this.policyCheck = { at: Date.now(), problem };
    return problem;
  }
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SupsupError('E_INTERNAL', `${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
