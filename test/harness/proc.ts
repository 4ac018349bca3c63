/**
 * Child-process plumbing shared by the Kafka and Redis harnesses: spawn a service with its output in a file,
 * make sure it never outlives the test process, stop it (SIGTERM, then SIGKILL), and clean up its temp dir.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** `SUPSUPD_KEEP_TEST_DIRS=1` keeps service dirs (logs, data) after stop() for post-mortem debugging. */
export function keepDirs(): boolean {
  return process.env.SUPSUPD_KEEP_TEST_DIRS === '1';
}

const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: SIGKILL every child still running, then remove the temp dirs.
  process.on('exit', () => {
    for (const child of liveChildren) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    if (keepDirs()) return;
    for (const dir of liveDirs) {
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
      } catch {
        // best effort; the watchdog removes it too
      }
    }
  });
}

/** A fresh temp dir `supsupd-<name>-XXXXXX`, removed by the exit hook if the test forgets to stop the service. */
export function makeServiceDir(name: string): string {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), `supsupd-${name}-`));
  liveDirs.add(dir);
  return dir;
}

/** Remove a dir made by {@link makeServiceDir} (kept when SUPSUPD_KEEP_TEST_DIRS=1). */
export async function removeServiceDir(dir: string): Promise<void> {
  liveDirs.delete(dir);
  if (keepDirs()) return;
  await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
}

/**
 * A detached `sh` loop that SIGKILLs `childPid` (and removes `dir`) once this Node process is gone, even if it
 * died by SIGKILL and never ran its 'exit' hook. It exits on its own as soon as the child is gone.
 */
function startWatchdog(childPid: number, dir: string | undefined): void {
  const script = [
    'while kill -0 "$2" 2>/dev/null; do',
    '  if ! kill -0 "$1" 2>/dev/null; then',
    '    kill -9 "$2" 2>/dev/null',
    '    if [ -n "$3" ]; then sleep 1; rm -rf -- "$3"; fi',
    '    exit 0',
    '  fi',
    '  sleep 1',
    'done',
  ].join('\n');
  const watchdog = spawn(
    'sh',
    ['-c', script, 'supsupd-watchdog', String(process.pid), String(childPid), dir ?? ''],
    {
      detached: true,
      stdio: 'ignore',
    },
  );
  watchdog.on('error', () => {});
  watchdog.unref();
}

export interface SpawnServiceOptions {
  command: string;
  args: string[];
  cwd: string;
  /** stdout and stderr are appended to this file (nothing is piped back, so a busy service never blocks). */
  outFile: string;
  env?: NodeJS.ProcessEnv;
  /** Removed by the watchdog if the test process dies without stopping the service. */
  dir?: string;
}

/**
 * Spawn a long-running service: stdin from /dev/null, output to a file, registered with the exit hook and a
 * watchdog. The handle is unref'd so a test that forgets stop() still lets the process exit (and the exit hook
 * then kills the service) instead of hanging the test run.
 */
export function spawnService(options: SpawnServiceOptions): ChildProcess {
  installExitHook();
  const fd = openSync(options.outFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  // Spawn failures (ENOENT) surface as an 'error' event followed by exit; handle it so it cannot crash the test.
  child.on('error', () => {});
  if (child.pid === undefined) return child;
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  child.unref();
  startWatchdog(child.pid, keepDirs() ? undefined : options.dir);
  return child;
}

export function hasExited(child: ChildProcess): boolean {
  return child.pid === undefined || child.exitCode !== null || child.signalCode !== null;
}

/** Resolves true once the child has exited, false after `timeoutMs` (the timer keeps the event loop alive). */
export function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (hasExited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(hasExited(child));
    }, timeoutMs);
    child.once('exit', onExit);
  });
}

/** Send `signal` if the child is still running; never throws. */
export function signalChild(child: ChildProcess, signal: NodeJS.Signals): void {
  if (hasExited(child)) return;
  try {
    child.kill(signal);
  } catch {
    // raced with exit
  }
}

/**
 * SIGTERM (plus SIGCONT, in case a test froze it with SIGSTOP), wait up to `graceMs`, then SIGKILL.
 * Returns how the process ended.
 */
export async function terminate(
  child: ChildProcess,
  graceMs: number,
): Promise<'already-exited' | 'terminated' | 'killed'> {
  if (hasExited(child)) return 'already-exited';
  signalChild(child, 'SIGTERM');
  signalChild(child, 'SIGCONT');
  if (await waitForExit(child, graceMs)) return 'terminated';
  signalChild(child, 'SIGKILL');
  if (await waitForExit(child, 10_000)) return 'killed';
  throw new Error(`pid ${child.pid} did not exit 10 s after SIGKILL`);
}

/** True when a process with this pid exists (zombies included). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The last `lines` lines of a text file ('' when it does not exist); reads at most the last 256 KiB. */
export function tailFile(file: string, lines = 40): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return '';
  }
  try {
    const size = statSync(file).size;
    const length = Math.min(size, 256 * 1024);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    return buffer
      .toString('utf8')
      .split('\n')
      .slice(-lines - 1)
      .join('\n')
      .trimEnd();
  } finally {
    closeSync(fd);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
