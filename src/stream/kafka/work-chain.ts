/**
 * KafkaSource's handling of chunks (see source.ts): one piece of work at a time, each after the one before, the
 * handling of a fetched batch or of a partition's lingering tail. A failing piece goes to its error callback;
 * the chain itself never rejects.
 */
export class WorkChain {
  private current: Promise<void> = Promise.resolve();

  /** Runs `work` after everything queued so far; its error goes to `onError`. */
  queue(work: () => Promise<void>, onError: (error: unknown) => void): void {
    this.current = this.current.then(work).catch(onError);
  }

  /** Resolves once nothing is in flight, including work queued while it waited. */
  async idle(): Promise<void> {
    let seen: Promise<void>;
    do {
      seen = this.current;
      await seen;
    } while (seen !== this.current);
  }
}
