/**
 * The real `supsupd run` CLI as a child process (node --import tsx src/cli/main.ts), for end-to-end tests.
 * Output (the daemon's JSON log lines and any crash text) is appended to a log file, never piped back, so a
 * chatty daemon cannot block; the process is registered with the harness's exit hook and watchdog, so it never
 * outlives the test process.
 */
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasExited, signalChild, spawnService, tailFile, waitForExit } from '../harness/proc.ts';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI_ENTRY = path.join(REPO_ROOT, 'src/cli/main.ts');

export interface DaemonExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface DaemonCli {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  /** Settles once the process has exited. */
  readonly exit: Promise<DaemonExit>;
  exited(): boolean;
  /** The last lines of the log file. */
  tail(lines?: number): string;
  /** Send a signal if it still runs. */
  signal(signal: NodeJS.Signals): void;
  /** SIGKILL if it still runs, then wait for the exit (cleanup; never throws). */
  kill(): Promise<void>;
}

export function writeConfig(file: string, config: unknown): void {
  writeFileSync(file, `${JSON.stringify(config, null, 2)}\n`);
}

/**
 * Starts `supsupd run --config <configPath>`. `env` is added to the test's environment; SUPSUPD_* variables
 * of the test process are dropped first, so only the config file (and `env`) configure the daemon.
 */
export function startDaemonCli(options: {
  configPath: string;
  logFile: string;
  env?: Readonly<Record<string, string>>;
  /** Removed by the harness watchdog if the test process dies first. */
  dir?: string;
  stdinFile?: string;
}): DaemonCli {
  return startCli({ ...options, args: ['run', '--config', options.configPath] });
}

/** Starts `supsupd <args…>` (e.g. `demo --http-port 9464 --hold`), with the environment rules above. */
export function startCli(options: {
  args: readonly string[];
  logFile: string;
  env?: Readonly<Record<string, string>>;
  dir?: string;
  /** A file given to the CLI as its stdin (default: /dev/null). */
  stdinFile?: string;
}): DaemonCli {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('SUPSUPD_') && !name.startsWith('KAFKAJS_')) env[name] = value;
  }
  Object.assign(env, options.env ?? {});
  const node = [process.execPath, '--import', 'tsx', CLI_ENTRY, ...options.args];
  let command = process.execPath;
  let args = node.slice(1);
  if (options.stdinFile !== undefined) {
    // The shell only redirects stdin and execs node, so the child's pid is the CLI's.
    env.SUPSUPD_TEST_STDIN = options.stdinFile;
    command = '/bin/sh';
    args = ['-c', 'exec "$0" "$@" < "$SUPSUPD_TEST_STDIN"', ...node];
  }
  const child = spawnService({
    command,
    args,
    cwd: REPO_ROOT,
    outFile: options.logFile,
    env,
    dir: options.dir,
  });
  if (child.pid === undefined) throw new Error(`could not spawn ${command} ${CLI_ENTRY}`);
  const pid = child.pid;
  const exit = new Promise<DaemonExit>((resolve) => {
    if (hasExited(child)) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return {
    child,
    pid,
    logFile: options.logFile,
    exit,
    exited: () => hasExited(child),
    tail: (lines = 40) => tailFile(options.logFile, lines),
    signal: (signal) => signalChild(child, signal),
    kill: async () => {
      signalChild(child, 'SIGKILL');
      await waitForExit(child, 10_000);
    },
  };
}
