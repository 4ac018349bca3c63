import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ErrorCode, isSupsupError, type SupsupError } from '../../errors.js';

/** An HTTP failure with a status and a stable code; its message goes to the client as is. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const API_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
} as const;

/** SupsupErrors that describe the request, not a fault of the daemon, and their statuses. */
const CLIENT_STATUS: Partial<Record<ErrorCode, number>> = {
  E_BAD_ARGUMENT: 400,
  E_NO_MASKS: 409,
  E_JOB_UNKNOWN: 404,
  E_STOPPED: 503,
};

/** The status of an error the client caused (its message is safe to return), else undefined. */
export function clientStatus(error: unknown): number | undefined {
  if (error instanceof HttpError) return error.status;
  return isSupsupError(error) ? CLIENT_STATUS[error.code] : undefined;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...API_HEADERS, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** The client's view of a failure: stable code and message, never a stack or internals. */
export function sendError(res: ServerResponse, error: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = clientStatus(error);
  if (status !== undefined) {
    const { code, message } = error as HttpError | SupsupError;
    sendJson(res, status, { error: { code, message } });
    return;
  }
  sendJson(res, 500, { error: { code: 'E_INTERNAL', message: 'internal error; see the daemon log' } });
}

/** Reads a request body of at most `limit` bytes; 413 beyond it, 415 unless it is JSON. */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) {
    throw new HttpError(415, 'E_HTTP_MEDIA_TYPE', 'the body must be application/json');
  }
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) {
    throw new HttpError(413, 'E_HTTP_BODY_TOO_LARGE', `the body exceeds ${limit} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limit) throw new HttpError(413, 'E_HTTP_BODY_TOO_LARGE', `the body exceeds ${limit} bytes`);
    chunks.push(buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'E_HTTP_JSON', 'the body is not valid JSON');
  }
}
