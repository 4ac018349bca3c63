/** The stream room: record codec, file/stdio and Kafka sources and sinks. */
export * from './file.js';
export * from './kafka.js';
export * from './record-codec.js';
export type * from './types.js';
