/**
 * `supsupd infer --model FILE`: one exported task (`supsupd masks export --task N`) served without the daemon
 * or its store. Over stdin/stdout: JSON records in (the daemon's input format, one per line), the daemon's result
 * lines out in input order, records that do not decode as dead-letter lines on stderr. With `--http-port`:
 * `POST /api/v1/infer` `{"x": [[…], …]}` → `{task, maskVersion, predictions, confidences, entropies}` and
 * `GET /api/v1/model`, until SIGINT/SIGTERM.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StandaloneModel } from '../archive/index.js';
import { decodeRecord, encodeDeadLetterJson, type RecordLimits, resultJson } from '../codec/record-codec.js';
import { errorMessage, SupsupError } from '../errors.js';
import {
  architectureKey,
  BACKEND_PREFERENCES,
  type BackendPreference,
  selectBackend,
} from '../model/network/index.js';
import type { InputRecord, RawRecord } from '../records.js';
import { readLines } from '../stream/file.js';
import { readArchiveFile } from './masks-sources.js';
import { OptionReader } from './options.js';

/** The daemon's default record size limit (batch.maxRecordBytes). */
const MAX_RECORD_BYTES = 1 << 20;
/** Records classified together at most (stdin). */
const CHUNK = 1024;
/** Rows one HTTP request may carry, and its body limit. */
const MAX_HTTP_ROWS = 4096;
const MAX_HTTP_BODY = 64 << 20;

export async function infer(raw: Readonly<Record<string, unknown>>): Promise<void> {
  const r = new OptionReader(raw);
  const file = r.string('model', '');
  if (file === '') r.problem('--model FILE is required');
  const port = raw.httpPort === undefined ? undefined : r.integer('httpPort', 0, 0, 65535);
  const host = r.string('httpHost', '127.0.0.1');
  const backend = r.choice<BackendPreference>('backend', BACKEND_PREFERENCES, 'auto');
  r.finish('infer');
  const archive = readArchiveFile(file);
  if (archive.scope !== 'task') {
    throw new SupsupError(
      'E_BAD_ARGUMENT',
      `${file} is a whole-store archive; infer serves one task: export it with supsupd masks export --task N`,
    );
  }
  await selectBackend(backend);
  const model = new StandaloneModel(archive);
  try {
    if (port === undefined) await serveStdio(model);
    else await serveHttp(model, host, port);
  } finally {
    model.dispose();
  }
}

async function serveStdio(model: StandaloneModel): Promise<void> {
  const limits: RecordLimits = { dim: model.inputs, maxBytes: MAX_RECORD_BYTES, classes: model.realClasses };
  let pending: InputRecord[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending.length === 0) return;
    const results = model.classify(pending);
    pending = [];
    process.stdout.write(results.map((result) => `${resultJson(result)}\n`).join(''));
  };
  let offset = 0;
  for await (const line of readLines(process.stdin, MAX_RECORD_BYTES)) {
    if (line.length === 0) continue;
    const record: RawRecord = {
      position: { topic: 'stdin', partition: 0, offset: String(offset++) },
      key: null,
      value: line,
      headers: {},
      timestamp: Date.now(),
    };
    const outcome = decodeRecord(record, limits);
    if (!outcome.ok) {
      // Results stay in input order: what came before the bad line goes out first.
      flush();
      process.stderr.write(`${encodeDeadLetterJson(outcome.letter).toString('utf8')}\n`);
      continue;
    }
    pending.push(outcome.record);
    if (pending.length >= CHUNK) flush();
    else if (!scheduled) {
      // The lines of one read chunk are classified together, and nothing waits for more input.
      scheduled = true;
      setImmediate(flush);
    }
  }
  flush();
}

function describe(model: StandaloneModel) {
  const { archive } = model;
  return {
    task: model.task,
    maskVersion: archive.task.meta.version,
    checksum: archive.task.meta.checksum,
    network: architectureKey(archive.arch),
    seed: archive.seed,
    inputs: archive.arch.inputs,
    transform: archive.transform.mode,
    source: archive.source,
    createdAt: archive.createdAt,
  };
}

async function serveHttp(model: StandaloneModel, host: string, port: number): Promise<void> {
  const server = createServer((req, res) => {
    handle(model, req, res).catch((error: unknown) => {
      const status = error instanceof HttpProblem ? error.status : 500;
      const message = error instanceof HttpProblem ? error.message : errorMessage(error);
      sendJson(res, status, { error: { message } });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) =>
      reject(new SupsupError('E_CONFIG', `cannot listen on ${host}:${port}: ${error.message}`)),
    );
    server.listen(port, host, resolve);
  });
  const address = server.address() as AddressInfo;
  process.stdout.write(
    `${JSON.stringify({ listening: `http://${host}:${address.port}`, ...describe(model) })}\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      server.close(() => resolve());
      server.closeAllConnections();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

class HttpProblem extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function handle(model: StandaloneModel, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === '/api/v1/model' && req.method === 'GET') return sendJson(res, 200, describe(model));
  if (url.pathname !== '/api/v1/infer') throw new HttpProblem(404, `no route ${url.pathname}`);
  if (req.method !== 'POST') throw new HttpProblem(405, 'POST a JSON body {"x": [[...], ...]}');
  const body = await readBody(req);
  const x = rowsOf(body, model.inputs);
  const out = model.classifyRows(x, x.length / model.inputs);
  sendJson(res, 200, {
    task: model.task,
    maskVersion: model.archive.task.meta.version,
    predictions: Array.from(out.predictions),
    confidences: Array.from(out.confidences),
    entropies: Array.from(out.entropies),
  });
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of req) {
    bytes += (chunk as Buffer).length;
    if (bytes > MAX_HTTP_BODY) throw new HttpProblem(413, `the body is over ${MAX_HTTP_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpProblem(400, 'the body is not valid JSON');
  }
}

/** `{"x": [[…inputs numbers…], …]}` as one row-major Float32Array. */
function rowsOf(body: unknown, inputs: number): Float32Array {
  const rows = (body as { x?: unknown } | null)?.x;
  if (!Array.isArray(rows) || rows.length === 0 || rows.length > MAX_HTTP_ROWS) {
    throw new HttpProblem(400, `the body must be {"x": [[...], ...]} with 1 to ${MAX_HTTP_ROWS} rows`);
  }
  const x = new Float32Array(rows.length * inputs);
  rows.forEach((row: unknown, i: number) => {
    if (!Array.isArray(row) || row.length !== inputs) {
      throw new HttpProblem(400, `row ${i} must be an array of ${inputs} numbers`);
    }
    row.forEach((v: unknown, j: number) => {
      if (typeof v !== 'number' || !Number.isFinite(Math.fround(v))) {
        throw new HttpProblem(400, `row ${i} value ${j} is not a finite number`);
      }
      x[i * inputs + j] = v;
    });
  });
  return x;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
