import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Asset {
  readonly body: Buffer;
  readonly contentType: string;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** The dashboard's folder: src/ops/dashboard beside the sources, dist/ops/dashboard once built. */
const DASHBOARD_DIR = fileURLToPath(new URL('../dashboard/', import.meta.url));

/** Files from npm packages the page uses, served from node_modules (no CDN). */
const VENDOR: Readonly<Record<string, string>> = {
  'uPlot.iife.min.js': 'uplot/dist/uPlot.iife.min.js',
  'uPlot.min.css': 'uplot/dist/uPlot.min.css',
};

/**
 * The dashboard's assets, read once at start-up: `/` is index.html, `/assets/<name>` the other files
 * of the folder, `/assets/vendor/<name>` the npm files above. Unknown paths are not served.
 */
export function loadDashboardAssets(dir: string = DASHBOARD_DIR): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const type = CONTENT_TYPES[path.extname(name)];
    if (type === undefined) continue;
    const body = readFileSync(path.join(dir, name));
    assets.set(name === 'index.html' ? '/' : `/assets/${name}`, { body, contentType: type });
  }
  const require = createRequire(import.meta.url);
  for (const [name, specifier] of Object.entries(VENDOR)) {
    const body = readFileSync(require.resolve(specifier));
    assets.set(`/assets/vendor/${name}`, { body, contentType: CONTENT_TYPES[path.extname(name)] as string });
  }
  return assets;
}
