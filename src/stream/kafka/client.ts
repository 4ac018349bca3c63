/**
 * The kafkajs client both ends share: connection options, and kafkajs's log lines forwarded to the
 * daemon's logger with secrets redacted.
 */
import type { ConnectionOptions } from 'node:tls';
import type { KafkaConfig, LogEntry, logCreator, RetryOptions, SASLOptions } from 'kafkajs';
import kafkajs from 'kafkajs';
import { SupsupError } from '../../errors.js';
import { assertKafkajsPatched } from './patch-check.js';

const { Kafka, logLevel: KafkaLogLevels } = kafkajs;

export type KafkaLogLevel = 'nothing' | 'error' | 'warn' | 'info' | 'debug';
export type LogLevelName = 'error' | 'warn' | 'info' | 'debug';
/** Where kafkajs's log lines go (the daemon passes winston). */
export type KafkaLogCallback = (level: LogLevelName, message: string, extra: Record<string, unknown>) => void;

export interface KafkaClientOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  /** kafkajs log level (default 'warn'; the KAFKAJS_LOG_LEVEL environment variable overrides it). */
  readonly logLevel?: KafkaLogLevel;
  /** Receives kafkajs's log lines; without it kafkajs logs to the console. */
  readonly log?: KafkaLogCallback;
  readonly ssl?: ConnectionOptions | boolean;
  readonly sasl?: SASLOptions;
  readonly connectionTimeout?: number;
  readonly requestTimeout?: number;
  /** kafkajs retry policy of the client (default: 5 retries from 300 ms, ×2, ≤ 30 s). */
  readonly retry?: RetryOptions;
}

const SECRET_KEY = /pass(word)?|secret|token|credential|authorization|sasl/i;

/** A kafkajs logCreator that forwards every entry to `callback` (never throws into kafkajs). */
export function kafkaLogCreator(callback: KafkaLogCallback): logCreator {
  return () =>
    ({ namespace, level, log }: LogEntry) => {
      try {
        const { message, timestamp: _timestamp, ...rest } = log;
        const extra: Record<string, unknown> = { namespace };
        for (const [key, value] of Object.entries(rest))
          extra[key] = SECRET_KEY.test(key) ? '[redacted]' : value;
        callback(logLevelName(level), String(message), extra);
      } catch {
        // a failing logger must not break the client
      }
    };
}

function logLevelName(level: number): LogLevelName {
  if (level <= KafkaLogLevels.ERROR) return 'error';
  if (level === KafkaLogLevels.WARN) return 'warn';
  if (level === KafkaLogLevels.INFO) return 'info';
  return 'debug';
}

function kafkaLogLevel(level: KafkaLogLevel): number {
  switch (level) {
    case 'nothing':
      return KafkaLogLevels.NOTHING;
    case 'error':
      return KafkaLogLevels.ERROR;
    case 'warn':
      return KafkaLogLevels.WARN;
    case 'info':
      return KafkaLogLevels.INFO;
    case 'debug':
      return KafkaLogLevels.DEBUG;
  }
}

export function createKafka(options: KafkaClientOptions): InstanceType<typeof Kafka> {
  assertKafkajsPatched();
  if (!Array.isArray(options.brokers) || options.brokers.length === 0) {
    throw new SupsupError('E_CONFIG', 'kafka: at least one broker is required');
  }
  const config: KafkaConfig = {
    brokers: [...options.brokers],
    clientId: options.clientId,
    logLevel: kafkaLogLevel(options.logLevel ?? 'warn'),
  };
  if (options.log) config.logCreator = kafkaLogCreator(options.log);
  if (options.ssl !== undefined) config.ssl = options.ssl;
  if (options.sasl !== undefined) config.sasl = options.sasl;
  if (options.connectionTimeout !== undefined) config.connectionTimeout = options.connectionTimeout;
  if (options.requestTimeout !== undefined) config.requestTimeout = options.requestTimeout;
  if (options.retry !== undefined) config.retry = { ...options.retry };
  return new Kafka(config);
}
