import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  DAEMON_ERRORS,
  type ErrorCode,
  type ErrorSpec,
  HTTP_ERRORS,
  type HttpErrorCode,
  isSupsupError,
} from '../../errors.js';

/** An HTTP failure with a stable code (its status comes from the registry); its message goes to the client as is. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: HttpErrorCode;

  constructor(code: HttpErrorCode, message: string) {
    super(message);
    this.status = HTTP_ERRORS[code].status;
    this.code = code;
  }
}

const API_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
} as const;

/** The status of a SupsupError code that describes the request, not a fault of the daemon (the registry's). */
function daemonErrorStatus(code: ErrorCode): number | undefined {
  const spec: ErrorSpec = DAEMON_ERRORS[code];
  return spec.status;
}

/** The status of an error the client caused (its message is safe to return), else undefined. */
export function clientStatus(error: unknown): number | undefined {
  if (error instanceof HttpError) return error.status;
  return isSupsupError(error) ? daemonErrorStatus(error.code) : undefined;
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
  if (status !== undefined && (error instanceof HttpError || isSupsupError(error))) {
    sendJson(res, status, { error: { code: error.code, message: error.message } });
    return;
  }
  sendJson(res, 500, { error: { code: 'E_INTERNAL', message: 'internal error; see the daemon log' } });
}

/** Reads a request body of at most `limit` bytes; 413 beyond it, 415 unless it is JSON. */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) {
    throw new HttpError('E_HTTP_MEDIA_TYPE', 'the body must be application/json');
  }
  const declared = Number(req.headers['content-length'] ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) {
    throw new HttpError('E_HTTP_BODY_TOO_LARGE', `the body exceeds ${limit} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limit) throw new HttpError('E_HTTP_BODY_TOO_LARGE', `the body exceeds ${limit} bytes`);
    chunks.push(buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpError('E_HTTP_JSON', 'the body is not valid JSON');
  }
}
