/**
 * File and stdio ends of the stream: the JSONL file and stdin sources (file-source.ts) and the
 * JSONL file and stdout sinks (file-sink.ts).
 */
export * from './file-sink.js';
export * from './file-source.js';
