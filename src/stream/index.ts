/** The stream room: record codec, file/stdio and Kafka sources and sinks. */

export * from '../codec/record-codec.js';
export * from './file.js';
export * from './kafka.js';
export type * from './types.js';
