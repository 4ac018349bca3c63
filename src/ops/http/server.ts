import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SupsupError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { clientStatus, HttpError, sendError } from './respond.js';

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  readonly requestTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly logger: Logger;
}

/** A route handler; `params` holds the path's captured segments. */
export type Handler = (
  req: IncomingMessage,
  res: ServerResponse,
  params: readonly string[],
) => Promise<void> | void;

export interface Route {
  readonly method: 'GET' | 'POST';
  /** An exact path, or a pattern whose groups become `params`. */
  readonly path: string | RegExp;
  readonly handler: Handler;
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
} as const;

/**
 * The ops HTTP server (node:http): a fixed route table, security headers on every answer, request
 * and header timeouts, and a close() that ends long-lived streams so it is bounded in time.
 */
export class HttpServer {
  private readonly server: Server;
  private readonly routes: readonly Route[];
  private readonly options: HttpServerOptions;
  private closing: Promise<void> | null = null;
  /** Called by close() before connections are dropped (ends server-sent event streams). */
  private readonly closers = new Set<() => void>();

  constructor(options: HttpServerOptions, routes: readonly Route[]) {
    this.options = options;
    this.routes = routes;
    this.server = createServer((req, res) => this.dispatch(req, res));
    this.server.requestTimeout = options.requestTimeoutMs;
    this.server.headersTimeout = options.headersTimeoutMs;
    this.server.keepAliveTimeout = 5_000;
    this.server.maxRequestsPerSocket = 1000;
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        reject(
          new SupsupError(
            'E_CONFIG',
            `cannot listen on ${this.options.host}:${this.options.port}: ${error.code ?? error.message}`,
            { retriable: error.code === 'EADDRINUSE', cause: error },
          ),
        );
      };
      this.server.once('error', onError);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    const address = this.server.address() as AddressInfo;
    this.options.logger.info('http listening', { host: address.address, port: address.port });
    return address;
  }

  /** Registers a function that ends a long-lived response when the server closes; returns its remover. */
  onClose(closer: () => void): () => void {
    this.closers.add(closer);
    return () => this.closers.delete(closer);
  }

  /** Stops accepting, ends streams and idle connections; idempotent, bounded by `deadlineMs`. */
  close(deadlineMs = 2_000): Promise<void> {
    if (this.closing === null) {
      this.closing = new Promise<void>((resolve) => {
        if (!this.server.listening) return resolve();
        for (const closer of [...this.closers]) closer();
        const timer = setTimeout(() => this.server.closeAllConnections(), deadlineMs);
        timer.unref();
        this.server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        this.server.closeIdleConnections();
      });
    }
    return this.closing;
  }

  private dispatch(req: IncomingMessage, res: ServerResponse): void {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
    const url = new URL(req.url ?? '/', 'http://localhost');
    const found = this.match(req.method ?? 'GET', url.pathname);
    if (found === 'method') {
      sendError(res, new HttpError('E_HTTP_METHOD', `${req.method} is not allowed on ${url.pathname}`));
      return;
    }
    if (found === null) {
      sendError(res, new HttpError('E_HTTP_NOT_FOUND', `no route for ${url.pathname}`));
      return;
    }
    Promise.resolve()
      .then(() => found.route.handler(req, res, found.params))
      .catch((error: unknown) => {
        if (clientStatus(error) === undefined) {
          this.options.logger.error('http handler failed', {
            method: req.method,
            path: url.pathname,
            error: error instanceof Error ? error.message : String(error),
          });
        }
        sendError(res, error);
      });
  }

  private match(method: string, pathname: string): { route: Route; params: string[] } | 'method' | null {
    let pathMatched = false;
    for (const route of this.routes) {
      const params = matchPath(route.path, pathname);
      if (params === null) continue;
      pathMatched = true;
      if (route.method === method || (method === 'HEAD' && route.method === 'GET')) return { route, params };
    }
    return pathMatched ? 'method' : null;
  }
}

function matchPath(pattern: string | RegExp, pathname: string): string[] | null {
  if (typeof pattern === 'string') return pattern === pathname ? [] : null;
  const match = pattern.exec(pathname);
  return match === null ? null : match.slice(1).map((part) => decodeURIComponent(part));
}
