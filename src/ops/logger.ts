import winston from 'winston';
import type { LogFields, Logger } from '../logger.js';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

/** The root logger: `flush()` waits until every line was handed to the stream (stop order's last step). */
export interface RootLogger extends Logger {
  flush(): Promise<void>;
}

const SECRET_KEYS = /pass(word)?|secret|token|authorization|credential|sasl/i;

/** Replaces the values of secret-looking keys and the password part of URLs. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6) return '[deep]';
  if (typeof value === 'string') return value.replace(/(\/\/[^:/@\s]*:)[^@/\s]+@/g, '$1***@');
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Error) return { name: value.name, message: redact(value.message, depth + 1) };
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEYS.test(k) ? '***' : redact(v, depth + 1);
    return out;
  }
  return value;
}

/**
 * winston: JSON lines by default, a readable line when the destination is a terminal. Logs go to
 * stderr unless `stream: 'stdout'` (the daemon's stdout may carry results).
 */
export function createLogger(options: {
  level: LogLevel;
  stream?: 'stdout' | 'stderr';
  pretty?: boolean;
}): RootLogger {
  const useStdout = options.stream === 'stdout';
  const tty = (useStdout ? process.stdout : process.stderr).isTTY === true;
  const pretty = options.pretty ?? tty;
  const format = winston.format.combine(
    winston.format.timestamp(),
    // Redact in place: winston keys its level and message by symbols that a copy would drop.
    winston.format((info) => Object.assign(info, redact({ ...info }) as object))(),
    pretty
      ? winston.format.printf(({ timestamp, level, message, ...rest }) => {
          const fields = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
          return `${String(timestamp)} ${level.padEnd(5)} ${String(message)}${fields}`;
        })
      : winston.format.json(),
  );
  const transport = new winston.transports.Stream({ stream: useStdout ? process.stdout : process.stderr });
  const root = winston.createLogger({ level: options.level, format, transports: [transport] });
  let flushed: Promise<void> | null = null;
  const flush = () => {
    flushed ??= new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2_000);
      timer.unref();
      root.once('finish', () => {
        clearTimeout(timer);
        resolve();
      });
      root.end();
    });
    return flushed;
  };
  return { ...wrap(root), flush };
}

function wrap(target: winston.Logger): Logger {
  const log = (level: LogLevel) => (message: string, fields?: LogFields) => {
    target.log(level, message, fields ?? {});
  };
  return {
    error: log('error'),
    warn: log('warn'),
    info: log('info'),
    debug: log('debug'),
    child: (fields) => wrap(target.child(fields)),
  };
}
