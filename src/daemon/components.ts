import path from 'node:path';
import type { SASLOptions } from 'kafkajs';
import type { DaemonConfig } from '../config.js';
import type { StandardiseConfig } from '../discovery/input-transform.js';
import type { Logger } from '../logger.js';
import { makeArchitecture } from '../model/network/arch.js';
import { defaultOptimizer } from '../model/training/optimizers.js';
import { openStore } from '../store/index.js';
import { EMPTY_POSITION } from '../store/position.js';
import { JsonlFileSink, StdoutSink } from '../stream/file.js';
import { type KafkaLogCallback, KafkaSink, KafkaSource } from '../stream/kafka.js';
import type { Sink, Source } from '../stream/types.js';
import type { DaemonOptions } from './daemon.js';
import { makeFileSource, makeStdinSource, type SourceContext } from './line-sources.js';

/** The parts of a daemon described by a validated configuration. */
export interface Components {
  readonly options: DaemonOptions;
  /**
   * Builds the source once the daemon knows its state (file sources resume from a checkpoint; stdin numbers on
   * from the store's offsets). Without a context: as for an empty store (tools that run no regression checks).
   */
  makeSource(context?: SourceContext): Promise<Source>;
}

const NO_CONTEXT: SourceContext = { storePosition: () => EMPTY_POSITION, appliedOffsets: () => ({}) };

export function buildComponents(config: DaemonConfig, logger: Logger): Components {
  const model = config.model;
  const arch = makeArchitecture({
    arch: model.hidden === undefined ? (model.arch ?? 'lenet') : undefined,
    hidden: model.hidden,
    inputs: model.inputs,
    outputs: model.outputs,
    realClasses: model.realClasses,
  });
  const { epsilon, minCandidates, budget, warmupBatches, checkEvery, fastPath, rule, evidence, ...training } =
    config.discovery;
  const options: DaemonOptions = {
    sink: makeSink(config.sink, logger),
    store: openStore(config.store),
    allowVolatileStore: config.store.kind === 'redis' ? config.store.allowNoPersistence : true,
    onRegression: config.store.onRegression,
    writer: config.store.writer,
    model: {
      arch,
      seed: model.seed,
      optimizer: defaultOptimizer(model.optimizer, model.lr),
      rule: { kind: 'threshold' },
    },
    learner: {
      rule,
      evidence,
      policy: { epsilon, minCandidates, budget, warmupBatches, checkEvery, fastPath },
      objective: 'H',
      standardise: standardiseConfig(model.input),
      ...training,
    },
    microBatch: config.batch.size,
    maxRecordBytes: config.batch.maxRecordBytes,
    logger,
    stopTimeoutMs: config.stopTimeoutMs,
  };
  return { options, makeSource: (context = NO_CONTEXT) => makeSource(config.source, logger, context) };
}

/** The learner's input standardisation as the configuration's `model.input` describes it. */
export function standardiseConfig(input: DaemonConfig['model']['input']): StandardiseConfig {
  const { standardise, fitRecords, clip } = input;
  if (standardise === 'off') return { mode: 'off' };
  if (standardise === 'auto') return { mode: 'auto', fitRecords, clip };
  return { mode: 'given', mean: standardise.mean, std: standardise.std, clip };
}

function kafkaLog(logger: Logger): KafkaLogCallback {
  const child = logger.child({ component: 'kafkajs' });
  return (level, message, extra) => child[level](message, extra);
}

function sasl(config: {
  sasl?: { mechanism: string; username: string; password: string };
}): SASLOptions | undefined {
  return config.sasl === undefined ? undefined : (config.sasl as SASLOptions);
}

async function makeSource(
  config: DaemonConfig['source'],
  logger: Logger,
  context: SourceContext,
): Promise<Source> {
  switch (config.kind) {
    case 'kafka':
      return new KafkaSource({
        brokers: config.brokers,
        clientId: config.clientId,
        ssl: config.ssl,
        sasl: sasl(config),
        groupId: config.groupId,
        topic: config.topic,
        fromBeginning: config.fromBeginning,
        sessionTimeout: config.sessionTimeoutMs,
        heartbeatInterval: config.heartbeatIntervalMs,
        maxBatchSize: config.maxBatchSize,
        lingerMs: config.lingerMs,
        ...(config.maxBytesPerPartition === undefined
          ? {}
          : { maxBytesPerPartition: config.maxBytesPerPartition }),
        log: kafkaLog(logger),
      });
    case 'file':
      return makeFileSource(config, context);
    case 'stdin':
      return makeStdinSource(config, context);
  }
}

function makeSink(config: DaemonConfig['sink'], logger: Logger): Sink {
  switch (config.kind) {
    case 'kafka':
      return new KafkaSink({
        brokers: config.brokers,
        clientId: config.clientId,
        ssl: config.ssl,
        sasl: sasl(config),
        resultsTopic: config.resultsTopic,
        deadLetterTopic: config.deadLetterTopic,
        eventsTopic: config.eventsTopic,
        ...(config.decisionsTopic === undefined ? {} : { decisionsTopic: config.decisionsTopic }),
        log: kafkaLog(logger),
      });
    case 'file':
      return new JsonlFileSink(
        path.join(config.dir, 'results.jsonl'),
        path.join(config.dir, 'dead-letters.jsonl'),
        path.join(config.dir, 'events.jsonl'),
        path.join(config.dir, 'decisions.jsonl'),
      );
    case 'stdout':
      return new StdoutSink();
  }
}
