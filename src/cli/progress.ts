/**
 * A progress line on stderr. On a terminal it redraws one line; elsewhere (CI logs, pipes) it
 * prints a line at most every `quietMs` so logs stay short. stdout is never touched.
 */
export class Progress {
  private readonly stream: NodeJS.WriteStream;
  private readonly interactive: boolean;
  private readonly started = Date.now();
  private lastPrinted = 0;
  private lastLength = 0;
  private readonly quietMs: number;
  private readonly enabled: boolean;

  constructor(options: { enabled?: boolean; quietMs?: number; stream?: NodeJS.WriteStream } = {}) {
    this.stream = options.stream ?? process.stderr;
    this.interactive = this.stream.isTTY === true;
    this.quietMs = options.quietMs ?? 10_000;
    this.enabled = options.enabled ?? true;
  }

  /** Reports `done` of `total` units with a label; fraction drives the bar and the ETA. */
  update(done: number, total: number, label: string): void {
    if (!this.enabled) return;
    const now = Date.now();
    const finished = done >= total;
    if (!this.interactive && !finished && now - this.lastPrinted < this.quietMs) return;
    if (this.interactive && !finished && now - this.lastPrinted < 100) return;
    this.lastPrinted = now;
    const fraction = total > 0 ? Math.min(1, done / total) : 1;
    const width = 24;
    const filled = Math.round(fraction * width);
    const elapsed = (now - this.started) / 1000;
    const eta = fraction > 0 ? elapsed / fraction - elapsed : Number.NaN;
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
    const text = `${bar} ${(fraction * 100).toFixed(1).padStart(5)}% ${label} | ${formatSeconds(elapsed)} elapsed${
      Number.isFinite(eta) && !finished ? `, ~${formatSeconds(eta)} left` : ''
    }`;
    if (this.interactive) {
      this.stream.write(`\r${text.padEnd(this.lastLength)}`);
      this.lastLength = text.length;
    } else {
      this.stream.write(`${text}\n`);
    }
  }

  /** Ends the redrawn line. */
  done(): void {
    if (this.enabled && this.interactive && this.lastLength > 0) this.stream.write('\n');
    this.lastLength = 0;
  }
}

function formatSeconds(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(0)}s`;
  const m = Math.floor(seconds / 60);
  return `${m}m${String(Math.round(seconds - m * 60)).padStart(2, '0')}s`;
}
