import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { HttpError } from './respond.js';

/**
 * Bearer-token check for mutating and admin endpoints. The comparison is constant-time (digests of
 * equal length); with no token configured those endpoints are disabled rather than open.
 */
export function requireBearer(req: IncomingMessage, token: string | undefined): void {
  if (token === undefined) {
    throw new HttpError(
      'E_HTTP_ADMIN_DISABLED',
      'admin endpoints are disabled: set http.token (SUPSUPD_HTTP_TOKEN)',
    );
  }
  const header = req.headers.authorization ?? '';
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (match === null || !sameSecret(match[1] as string, token)) {
    throw new HttpError('E_HTTP_UNAUTHORIZED', 'a valid bearer token is required');
  }
}

function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
