import type { IncomingMessage, ServerResponse } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { BatchDecision } from '../../records.js';
import { MAX_READ_EVENTS } from '../../store/events.js';
import type { StoredEvent } from '../../store/types.js';
import type { LiveMessage } from '../activity.js';
import type { ApiInferResponse, ApiStatus, ApiTask, ApiTimelinePoint } from '../api-types.js';
import type { JobRun, JobStatus } from '../scheduler.js';
import { requireBearer } from './auth.js';
import { HttpError, readJsonBody, sendJson } from './respond.js';
import type { HttpServer, Route } from './server.js';
import { loadDashboardAssets } from './static.js';

/** What the HTTP API reads and asks of the running service (src/ops/service.ts implements it). */
export interface OpsViews {
  readiness(): Promise<{ ready: boolean; reasons: readonly string[] }>;
  status(): Promise<ApiStatus>;
  tasks(): readonly ApiTask[];
  timeline(): readonly ApiTimelinePoint[];
  subscribe(listener: (message: LiveMessage) => void, lastEventId?: number): () => void;
  /** Model input dimension (validation of /infer requests). */
  readonly inputs: number;
  infer(x: Float32Array, rows: number): ApiInferResponse;
  jobs(): readonly JobStatus[];
  runJob(name: string): Promise<JobRun>;
  /** The last `limit` decision-log entries this process made (of `partition` only, when given), oldest first. */
  decisions(limit: number, partition?: string): readonly BatchDecision[];
  /** The store's persistent event log, oldest first, after the event id `after`. */
  eventLog(after: string | undefined, limit: number): Promise<readonly StoredEvent[]>;
  metrics(): Promise<{ contentType: string; text: string }>;
}

export interface RouteOptions {
  readonly token: string | undefined;
  readonly bodyLimitBytes: number;
  /** Most rows one /infer request may carry. */
  readonly maxInferRows?: number;
  /** Most concurrent event-stream clients. */
  readonly maxStreams?: number;
}

const STREAM_KEEPALIVE_MS = 15_000;
/** Most decision-log entries one /api/v1/decisions answer carries (the process keeps the last 1,000). */
const MAX_DECISIONS = 1000;

/** The route table of the ops server. */
export function opsRoutes(views: OpsViews, server: () => HttpServer, options: RouteOptions): Route[] {
  const assets = loadDashboardAssets();
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  let streams = 0;
  const maxStreams = options.maxStreams ?? 64;
  const maxRows = options.maxInferRows ?? 4096;

  const routes: Route[] = [
    {
      method: 'GET',
      path: '/livez',
      // The process answers and its event loop turns: nothing external is consulted.
      handler: (_req, res) => {
        sendJson(res, 200, {
          live: true,
          eventLoopDelayP99Ms: Math.round(loopDelay.percentile(99) / 1e6),
          uptimeSeconds: Math.round(process.uptime()),
        });
        loopDelay.reset();
      },
    },
    {
      method: 'GET',
      path: '/readyz',
      handler: async (_req, res) => {
        const readiness = await views.readiness();
        sendJson(res, readiness.ready ? 200 : 503, readiness);
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      handler: async (_req, res) => {
        const { contentType, text } = await views.metrics();
        res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
        res.end(text);
      },
    },
    {
      method: 'GET',
      path: '/api/v1/status',
      handler: async (_req, res) => sendJson(res, 200, await views.status()),
    },
    {
      method: 'GET',
      path: '/api/v1/tasks',
      handler: (_req, res) => sendJson(res, 200, { tasks: views.tasks() }),
    },
    {
      method: 'GET',
      path: /^\/api\/v1\/tasks\/([^/]+)$/,
      handler: (_req, res, [id]) => {
        if (!/^\d+$/.test(id ?? ''))
          throw new HttpError('E_HTTP_BAD_ID', 'a task id is a non-negative integer');
        const task = views.tasks().find((t) => t.task === Number(id));
        if (task === undefined) throw new HttpError('E_HTTP_NO_TASK', `no task ${id}`);
        sendJson(res, 200, task);
      },
    },
    {
      method: 'GET',
      path: '/api/v1/timeline',
      handler: (_req, res) => sendJson(res, 200, { points: views.timeline() }),
    },
    {
      method: 'GET',
      path: '/api/v1/decisions',
      handler: (req, res) => {
        const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
        const limit = Number(query.get('limit') ?? 100);
        if (!Number.isInteger(limit) || limit < 1 || limit > MAX_DECISIONS) {
          throw new HttpError('E_HTTP_BAD_LIMIT', `limit must be an integer in [1, ${MAX_DECISIONS}]`);
        }
        const partition = query.get('partition') ?? undefined;
        sendJson(res, 200, { decisions: views.decisions(limit, partition) });
      },
    },
    {
      method: 'GET',
      path: '/api/v1/events',
      handler: (req, res) => {
        if (streams >= maxStreams) throw new HttpError('E_HTTP_BUSY', 'too many event streams open');
        streams++;
        openEventStream(req, res, views, server(), () => streams--);
      },
    },
    {
      method: 'POST',
      path: '/api/v1/infer',
      handler: async (req, res) => {
        const body = await readJsonBody(req, options.bodyLimitBytes);
        const { x, rows } = parseInferRequest(body, views.inputs, maxRows);
        sendJson(res, 200, views.infer(x, rows));
      },
    },
    {
      method: 'GET',
      path: '/api/v1/jobs',
      handler: (_req, res) => sendJson(res, 200, { jobs: views.jobs() }),
    },
    {
      method: 'POST',
      path: /^\/api\/v1\/jobs\/([A-Za-z0-9_-]+)\/run$/,
      handler: async (req, res, [name]) => {
        requireBearer(req, options.token);
        sendJson(res, 200, await views.runJob(name as string));
      },
    },
    {
      method: 'GET',
      path: '/api/v1/event-log',
      handler: async (req, res) => {
        const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
        const after = query.get('after') ?? undefined;
        if (after !== undefined && !/^\d+-\d+$/.test(after)) {
          throw new HttpError('E_HTTP_BAD_ID', 'after must be an event id (<ms>-<seq>)');
        }
        const limit = Number(query.get('limit') ?? 100);
        if (!Number.isInteger(limit) || limit < 1 || limit > MAX_READ_EVENTS) {
          throw new HttpError('E_HTTP_BAD_LIMIT', `limit must be an integer in [1, ${MAX_READ_EVENTS}]`);
        }
        sendJson(res, 200, { events: await views.eventLog(after, limit) });
      },
    },
  ];
  for (const [path, asset] of assets) {
    routes.push({
      method: 'GET',
      path,
      handler: (_req, res) => {
        res.writeHead(200, {
          'content-type': asset.contentType,
          'content-length': asset.body.length,
          'cache-control': path === '/' ? 'no-cache' : 'public, max-age=300',
        });
        res.end(asset.body);
      },
    });
  }
  return routes;
}

/** Server-sent events: replays after Last-Event-ID, then every new message, with keep-alive comments. */
function openEventStream(
  req: IncomingMessage,
  res: ServerResponse,
  views: OpsViews,
  server: HttpServer,
  onEnd: () => void,
): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write('retry: 2000\n\n');
  const lastId = Number(req.headers['last-event-id']);
  const send = (message: LiveMessage) => {
    res.write(`id: ${message.id}\nevent: ${message.type}\ndata: ${JSON.stringify(message.data)}\n\n`);
  };
  const unsubscribe = views.subscribe(send, Number.isInteger(lastId) ? lastId : undefined);
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), STREAM_KEEPALIVE_MS);
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    clearInterval(keepAlive);
    unsubscribe();
    removeCloser();
    onEnd();
    res.end();
  };
  const removeCloser = server.onClose(end);
  req.on('close', end);
}

function parseInferRequest(
  body: unknown,
  inputs: number,
  maxRows: number,
): { x: Float32Array; rows: number } {
  const rows = (body as { x?: unknown } | null)?.x;
  if (!Array.isArray(rows) || rows.length === 0) {
    throw new HttpError('E_HTTP_INFER_BODY', 'expected {"x": [[...], ...]} with at least one row');
  }
  if (rows.length > maxRows) throw new HttpError('E_HTTP_INFER_ROWS', `at most ${maxRows} rows per request`);
  const x = new Float32Array(rows.length * inputs);
  rows.forEach((row: unknown, r) => {
    if (!Array.isArray(row) || row.length !== inputs) {
      throw new HttpError('E_HTTP_INFER_BODY', `row ${r} must be an array of ${inputs} numbers`);
    }
    row.forEach((value: unknown, i) => {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new HttpError('E_HTTP_INFER_BODY', `row ${r}, value ${i} is not a finite number`);
      }
      x[r * inputs + i] = value;
    });
  });
  return { x, rows: rows.length };
}
