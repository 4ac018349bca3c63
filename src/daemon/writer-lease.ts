import { errorMessage, SupsupError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Lease, MaskStore } from '../store/types.js';

export interface WriterLeaseOptions {
  /** Time to live of the lease; it is renewed every third of it. */
  readonly leaseMs: number;
  /** Wait for the lease while another daemon holds it, instead of failing. */
  readonly standby: boolean;
}

/**
 * The daemon's hold on its namespace's writer lease (MaskStore.acquireWriter): taken before the state is
 * loaded, renewed in the background, released on stop. Only the holder commits; the store checks the lease's
 * token with every commit, so a daemon that lost it (paused past the ttl, partitioned) cannot write even before
 * it notices. `lost` turns true when a renewal finds the lease gone; the daemon then takes it again (or waits)
 * before its next commit and reloads the state first.
 */
export class WriterLease {
  private lease: Lease | null;
  private timer: NodeJS.Timeout | null = null;
  private renewing: Promise<void> | null = null;
  private lostReason: string | null = null;

  private constructor(
    private readonly store: MaskStore,
    private readonly options: WriterLeaseOptions,
    private readonly log: Logger,
    lease: Lease,
  ) {
    this.lease = lease;
    this.startRenewing();
  }

  /**
   * Takes the lease, waiting for it as a standby when configured (until `signal` aborts). E_STORE_CONFLICT when
   * another daemon holds it and this one does not wait.
   */
  static async acquire(
    store: MaskStore,
    options: WriterLeaseOptions,
    log: Logger,
    signal?: AbortSignal,
  ): Promise<WriterLease> {
    const lease = await takeLease(store, options, log, signal);
    return new WriterLease(store, options, log, lease);
  }

  /** Why the lease is not held now, or null while it is. */
  get problem(): string | null {
    return this.lostReason;
  }

  /** Takes the lease again after it was lost (never waits); false while another daemon holds it. */
  async regain(): Promise<boolean> {
    if (this.lease !== null && this.lostReason === null) return true;
    const lease = await this.store.acquireWriter(this.options.leaseMs);
    if (lease === null) return false;
    this.lease = lease;
    this.lostReason = null;
    this.log.warn('writer lease taken again');
    return true;
  }

  /** Stops renewing and gives the lease up (bounded by the store's own timeouts). Idempotent. */
  async release(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.renewing?.catch(() => {});
    const lease = this.lease;
    this.lease = null;
    await lease?.release().catch((error: unknown) => {
      this.log.warn('writer lease release failed; it expires by itself', { error: errorMessage(error) });
    });
  }

  private startRenewing(): void {
    this.timer = setInterval(
      () => {
        this.renewing ??= this.renew().finally(() => {
          this.renewing = null;
        });
      },
      Math.max(100, Math.floor(this.options.leaseMs / 3)),
    );
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    const lease = this.lease;
    if (lease === null || this.lostReason !== null) return;
    let held: boolean;
    try {
      held = await lease.renew();
    } catch (error) {
      // The store is unreachable: the lease may still be ours; the store's check on commit decides.
      this.log.warn('writer lease renewal failed', { error: errorMessage(error) });
      return;
    }
    if (!held) {
      this.lostReason = 'writer lease lost (expired or taken by another daemon)';
      this.log.error('writer lease lost: this daemon stops committing until it holds the lease again');
    }
  }
}

async function takeLease(
  store: MaskStore,
  options: WriterLeaseOptions,
  log: Logger,
  signal: AbortSignal | undefined,
): Promise<Lease> {
  let waiting = false;
  let left: LeftLease | null = null;
  for (;;) {
    const lease = await store.acquireWriter(options.leaseMs);
    if (lease !== null) {
      if (waiting) log.warn('standby: writer lease taken; this daemon is now the writer');
      if (left !== null) log.warn("the previous writer's lease expired; this daemon is now the writer");
      return lease;
    }
    let delay = Math.max(100, Math.floor(options.leaseMs / 4));
    if (!options.standby) {
      // Not a standby: a lease a writer left when it died (SIGKILL, a crashed host) runs out by itself, so it is
      // waited for; one that is renewed, or passes to another writer, belongs to a live daemon: refused.
      const holder = await store.writerHolder?.();
      if (holder === undefined || (holder !== null && left !== null && renewed(left, holder))) {
        throw new SupsupError(
          'E_STORE_CONFLICT',
          `another daemon holds the writer lease of this ${store.kind} store; only one daemon may write a namespace ` +
            '(set store.writer.standby to wait for it instead)',
        );
      }
      if (holder !== null && left === null) {
        left = { token: holder.token, expiresAt: Date.now() + holder.expiresInMs };
        log.warn(
          'the writer lease is held: waiting for it to run out (a writer that died leaves it behind)',
          {
            expiresInMs: holder.expiresInMs,
          },
        );
      }
      delay = holder === null ? 0 : Math.min(500, Math.max(20, holder.expiresInMs));
    } else {
      if (!waiting) log.warn('standby: another daemon holds the writer lease; waiting for it');
      waiting = true;
    }
    await sleep(delay, signal);
    if (signal?.aborted === true)
      throw new SupsupError('E_STOPPED', 'stopped while waiting for the writer lease');
  }
}

/** A writer lease found held at start, as first seen. */
interface LeftLease {
  readonly token: string;
  readonly expiresAt: number;
}

/** True when the lease passed to another holder, or its expiry moved later (its holder renewed it: alive). */
function renewed(left: LeftLease, holder: { token: string; expiresInMs: number }): boolean {
  return holder.token !== left.token || Date.now() + holder.expiresInMs > left.expiresAt + RENEWAL_SLACK_MS;
}

/** Clock and round-trip jitter allowed before a later expiry counts as a renewal. */
const RENEWAL_SLACK_MS = 250;

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Opens the store; a store that only one process may open (the file store's directory lock) and that another
 * daemon holds is waited for when `options.standby` is set, else its E_STORE_CONFLICT is thrown.
 */
export async function openStoreAsWriter(
  store: MaskStore,
  options: WriterLeaseOptions,
  log: Logger,
  signal?: AbortSignal,
): Promise<void> {
  let waiting = false;
  for (;;) {
    try {
      await store.open();
      return;
    } catch (error) {
      const held = error instanceof SupsupError && error.code === 'E_STORE_CONFLICT';
      if (!held || !options.standby) throw error;
      if (!waiting)
        log.warn('standby: another daemon holds the store; waiting for it', { error: error.message });
      waiting = true;
      await sleep(Math.max(100, Math.floor(options.leaseMs / 4)), signal);
      if (signal?.aborted === true) throw new SupsupError('E_STOPPED', 'stopped while waiting for the store');
    }
  }
}
