/**
 * The live dashboard in a real browser: the real `supsupd demo --http-port … --hold` serves it, Debian's
 * chromium (driven by playwright-core) opens it. The page must load without console errors or failed
 * requests, list the demo's tasks as /api/v1/tasks does, add a task row when the daemon discovers a task
 * (live, over the events stream, without a reload), and draw at least two tasks on the timeline. Once
 * the finite stream has been consumed it must say so (with when and the totals), and show each
 * partition's lag, the dead letters by reason, the store writes and each task's state in words as the
 * API gives them.
 * The screenshot lands in test/artifacts/dashboard.png.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import type { ApiStatus, ApiTasks } from '../../src/ops/api-types.ts';
import { freePort, LOOPBACK } from '../harness/ports.ts';
import { makeServiceDir, removeServiceDir, sleep, waitForExit } from '../harness/proc.ts';
import { type DaemonCli, REPO_ROOT, startCli } from '../support/daemon-cli.ts';
import { waitFor } from '../support/wait.ts';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SEGMENT = 2000;
const DEMO_RECORDS = 6 * SEGMENT;
const SCREENSHOT = path.join(REPO_ROOT, 'test/artifacts/dashboard.png');

/** Polls `probe` until it returns a value; fails with `what` and the demo's log, or at once if the demo exits. */
function waitForDemo<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  demo: DaemonCli,
): Promise<T> {
  return waitFor(what, timeoutMs, probe, {
    abortIf: () => (demo.exited() ? 'the demo exited' : undefined),
    context: () => demo.tail(),
  });
}

async function getJson<T>(base: string, route: string): Promise<T> {
  const response = await fetch(`${base}${route}`);
  assert.equal(response.status, 200, `${route}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

async function rowTasks(page: Page): Promise<number[]> {
  const values = await page
    .locator('#task-table tbody tr[data-task]')
    .evaluateAll((rows) => rows.map((row) => Number(row.getAttribute('data-task'))));
  return values.sort((a, b) => a - b);
}

async function timelineTasks(page: Page): Promise<number[]> {
  const value = (await page.locator('#timeline').getAttribute('data-tasks')) ?? '';
  return value === '' ? [] : value.split(',').map(Number);
}

/**
 * Collects console errors, uncaught page errors and failed or non-2xx requests until `stop()`, and counts
 * main-frame navigations (a reload would be a second one).
 */
function watchPage(page: Page): { problems: string[]; navigations: () => number; stop: () => void } {
  const problems: string[] = [];
  let watching = true;
  let navigations = 0;
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) navigations++;
  });
  const note = (problem: string): void => {
    if (watching) problems.push(problem);
  };
  page.on('console', (message) => {
    if (message.type() === 'error') note(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => note(`page error: ${error.message}`));
  page.on('requestfailed', (request) =>
    note(`request failed: ${request.url()} (${request.failure()?.errorText ?? 'unknown'})`),
  );
  page.on('response', (response) => {
    if (response.status() >= 400) note(`HTTP ${response.status()}: ${response.url()}`);
  });
  return {
    problems,
    navigations: () => navigations,
    stop: () => {
      watching = false;
    },
  };
}

const numberFormat = new Intl.NumberFormat('en');

/** A latency as the page writes it (stream-status.js, formatSeconds). */
function formatSeconds(seconds: number): string {
  return seconds < 1 ? `${(seconds * 1000).toFixed(1)} ms` : `${seconds.toFixed(2)} s`;
}

/**
 * Once the source has finished: the live indicator and the banner say so, with the totals; each
 * partition shows its lag, the dead letters by reason and the store writes match /api/v1/status.
 */
async function checkFinishedStream(page: Page, status: ApiStatus, demo: DaemonCli): Promise<void> {
  await waitForDemo(
    'the page to say the stream finished',
    async () => ((await page.locator('#live').getAttribute('data-state')) === 'finished' ? true : undefined),
    10_000,
    demo,
  );
  assert.equal(await page.locator('#live-label').textContent(), 'stream finished');
  assert.equal(await page.locator('#stat-source').textContent(), 'finished');
  const banner = page.locator('#stream-end');
  assert.equal(await banner.isVisible(), true);
  assert.equal(await banner.getAttribute('data-state'), 'finished');
  const text = (await banner.textContent()) ?? '';
  const { records } = status;
  const totals = `${numberFormat.format(records.in)} records in, ${numberFormat.format(records.out)} out, ${numberFormat.format(records.deadLettered)} dead-lettered; ${status.tasks} tasks (${status.frozenTasks} frozen)`;
  assert.match(text, /^Stream finished at \d\d:\d\d:\d\d \(/, text);
  assert.ok(text.includes(totals), `${text} has ${totals}`);

  assert.deepEqual(status.consumerLag, { 'demo/0': null }, 'the demo stream has no high watermark');
  const partition = page.locator('#current-tasks li[data-partition="demo/0"]');
  assert.equal(await partition.getAttribute('data-lag'), '');
  assert.equal(await partition.locator('.lag').textContent(), 'lag –');

  const reasons = Object.entries(status.records.deadLetteredByReason).filter(([, n]) => n > 0);
  assert.deepEqual(reasons, [], 'the demo stream has no bad record');
  assert.equal(await page.locator('#dead-letter-reasons li[data-reason]').count(), 0);
  assert.equal(await page.locator('#dead-letter-reasons').textContent(), 'none');

  const writes = status.storeWrites;
  assert.ok(writes.recent !== null && writes.applied > 0, JSON.stringify(writes));
  assert.equal(
    await page.locator('#stat-store-latency').textContent(),
    `${formatSeconds(writes.recent.p50Seconds)} / ${formatSeconds(writes.recent.p95Seconds)}`,
  );
  assert.equal(
    await page.locator('#stat-commits').textContent(),
    `${numberFormat.format(writes.applied)} (${writes.fenced}, ${writes.failed})`,
  );
}

/**
 * What the demo cannot produce, rendered by the page all the same: /api/v1/status answered by the test
 * with the real status changed to a failed source, two Kafka-like partitions with a known lag, dead
 * letters of two reasons and failed commits.
 */
async function checkRenderedStatus(page: Page, status: ApiStatus, demo: DaemonCli): Promise<void> {
  const changed: ApiStatus = {
    ...status,
    sourceState: { ...status.sourceState, state: 'failed' },
    currentTasks: { 'orders/0': 2, 'orders/1': null },
    consumerLag: { 'orders/0': 1234, 'orders/1': 0 },
    records: {
      ...status.records,
      deadLettered: 4,
      deadLetteredByReason: { ...status.records.deadLetteredByReason, E_RECORD_JSON: 3, E_RECORD_LABEL: 1 },
    },
    storeWrites: { ...status.storeWrites, failed: 2 },
  };
  await page.route('**/api/v1/status', (route) => route.fulfill({ json: changed }));
  try {
    await waitForDemo(
      'the page to render the changed status',
      async () => ((await page.locator('#live').getAttribute('data-state')) === 'failed' ? true : undefined),
      10_000,
      demo,
    );
    assert.equal(await page.locator('#live-label').textContent(), 'source failed');
    assert.equal(await page.locator('#stream-end').getAttribute('data-state'), 'failed');
    assert.match((await page.locator('#stream-end').textContent()) ?? '', /^Source failed at .*why\.$/);
    const partitions = await page
      .locator('#current-tasks li[data-partition]')
      .evaluateAll((items) => items.map((item) => `${item.getAttribute('data-lag')}|${item.textContent}`));
    assert.deepEqual(partitions, ['1234|orders/0 → task 2lag 1,234', '0|orders/1: no task yetlag 0']);
    const reasons = await page
      .locator('#dead-letter-reasons li[data-reason]')
      .evaluateAll((items) =>
        items.map((item) => `${item.getAttribute('data-reason')}=${item.getAttribute('data-count')}`),
      );
    assert.deepEqual(reasons, ['E_RECORD_JSON=3', 'E_RECORD_LABEL=1']);
    const commits = page.locator('#stat-commits');
    assert.equal(
      await commits.textContent(),
      `${numberFormat.format(status.storeWrites.applied)} (${status.storeWrites.fenced}, 2)`,
    );
    assert.equal(await commits.getAttribute('class'), 'warn', 'failed commits are shown as a problem');
  } finally {
    await page.unroute('**/api/v1/status');
  }
}

/** The table's state column says `frozen` or `training`, as /api/v1/tasks's `frozen` is true or false. */
async function checkTaskStates(page: Page, base: string, demo: DaemonCli): Promise<void> {
  const header = await page.locator('#task-table thead th').allTextContents();
  assert.ok(header.includes('state') && !header.includes('frozen'), header.join(' | '));
  const tasks = (await getJson<ApiTasks>(base, '/api/v1/tasks')).tasks;
  const expected = tasks.map((task) => `${task.task}:${task.frozen ? 'frozen' : 'training'}`).join(',');
  const shown = await waitForDemo(
    `the state column to read ${expected}`,
    async () => {
      const cells = await page
        .locator('#task-table tbody tr[data-task]')
        .evaluateAll((rows) =>
          rows.map(
            (row) => `${row.getAttribute('data-task')}:${row.querySelector('[data-col=state]')?.textContent}`,
          ),
        );
      return cells.join(',') === expected ? cells : undefined;
    },
    10_000,
    demo,
  );
  assert.equal(shown.length, tasks.length);
}

test('dashboard: loads in chromium, lists the demo tasks, adds a discovered task live, draws the timeline', {
  timeout: 300_000,
}, async (t) => {
  assert.ok(
    existsSync(CHROMIUM),
    `Debian's chromium is missing at ${CHROMIUM}: install it with \`apt-get install -y chromium\` (.ci/run does)`,
  );
  const dir = makeServiceDir('dashboard');
  const port = await freePort();
  const base = `http://${LOOPBACK}:${port}`;
  const demo = startCli({
    args: [
      'demo',
      '--http-port',
      String(port),
      '--http-host',
      LOOPBACK,
      '--hold',
      '--segment',
      String(SEGMENT),
    ].concat(['--dir', path.join(dir, 'data')]),
    logFile: path.join(dir, 'demo.log'),
    dir,
  });
  let context: BrowserContext | undefined;
  try {
    // Start the browser while the demo loads its data set and model, so the page opens early in the stream.
    context = await chromium.launchPersistentContext(path.join(dir, 'chromium-profile'), {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      viewport: { width: 1400, height: 1100 },
    });
    await waitForDemo(
      '/readyz 200',
      async () => ((await fetch(`${base}/readyz`)).status === 200 ? true : undefined),
      180_000,
      demo,
    );

    const page = context.pages()[0] ?? (await context.newPage());
    const watch = watchPage(page);
    const response = await page.goto(`${base}/`);
    assert.equal(response?.status(), 200, 'GET /');

    // The first tasks the page shows, then a task row that was not there, with no reload: the SSE stream.
    const firstRows = await waitForDemo(
      'the first task row',
      async () => ((await rowTasks(page)).length > 0 ? rowTasks(page) : undefined),
      120_000,
      demo,
    );
    const statusAtFirstRows = await getJson<ApiStatus>(base, '/api/v1/status');
    assert.ok(
      statusAtFirstRows.records.in < DEMO_RECORDS,
      `the demo's stream had ended (${statusAtFirstRows.records.in} records) before the page showed tasks ${firstRows.join(', ')}: no live discovery left to observe`,
    );
    assert.equal(statusAtFirstRows.sourceState.state, 'running');
    await waitForDemo(
      'the page to show the source running',
      async () =>
        (await page.locator('#stat-source').getAttribute('data-state')) === 'running' ? true : undefined,
      10_000,
      demo,
    );
    assert.equal(await page.locator('#live').getAttribute('data-state'), 'live');
    assert.equal(await page.locator('#stream-end').isHidden(), true, 'no stream-end banner while it runs');
    const grown = await waitForDemo(
      `a task row added live (the page first showed tasks ${firstRows.join(', ')})`,
      async () => {
        const rows = await rowTasks(page);
        return rows.some((task) => !firstRows.includes(task)) ? rows : undefined;
      },
      120_000,
      demo,
    );
    assert.equal(watch.navigations(), 1, 'the page was never reloaded');
    assert.ok(grown.length > firstRows.length, `rows ${firstRows.join(',')} → ${grown.join(',')}`);
    t.diagnostic(`task rows: first ${firstRows.join(',')}, then ${grown.join(',')} (live, no reload)`);

    await waitForDemo(
      '≥ 2 tasks on the timeline',
      async () => ((await timelineTasks(page)).length >= 2 ? true : undefined),
      60_000,
      demo,
    );

    // Let the stream finish, then the table must list exactly the tasks of /api/v1/tasks.
    const finished = await waitForDemo(
      'the demo stream to finish',
      async () => {
        const status = await getJson<ApiStatus>(base, '/api/v1/status');
        return status.sourceState.state === 'finished' ? status : undefined;
      },
      180_000,
      demo,
    );
    assert.equal(finished.records.out, DEMO_RECORDS);
    await checkFinishedStream(page, finished, demo);
    const api = await getJson<ApiTasks>(base, '/api/v1/tasks');
    const apiTasks = api.tasks.map((task) => task.task).sort((a, b) => a - b);
    assert.ok(apiTasks.length >= 2, `the demo discovers several tasks: ${apiTasks.join(', ')}`);
    const finalRows = await waitForDemo(
      'the table to match /api/v1/tasks',
      async () => {
        const rows = await rowTasks(page);
        return rows.join(',') === apiTasks.join(',') ? rows : undefined;
      },
      30_000,
      demo,
    );
    assert.deepEqual(finalRows, apiTasks);
    for (const task of api.tasks) {
      const bornAt = await page
        .locator(`#task-table tr[data-task="${task.task}"] [data-col=bornAt]`)
        .textContent();
      assert.ok(
        bornAt?.includes(task.bornAt.offset),
        `task ${task.task} born at ${task.bornAt.offset}: ${bornAt}`,
      );
    }
    await checkTaskStates(page, base, demo);
    assert.ok((await timelineTasks(page)).length >= 2);
    assert.equal(await page.locator('[data-testid=status]').getAttribute('data-ready'), 'true');

    await sleep(1500); // one more events summary, so the charts reach the end of the stream
    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    await checkRenderedStatus(page, finished, demo);

    watch.stop();
    assert.deepEqual(watch.problems, [], 'no console errors or failed requests');
    await context.close();
    context = undefined;

    demo.signal('SIGTERM');
    assert.ok(
      await waitForExit(demo.child, 60_000),
      `the demo did not exit 60 s after SIGTERM:\n${demo.tail()}`,
    );
    const exit = await demo.exit;
    assert.deepEqual(exit, { code: 0, signal: null }, demo.tail());
  } finally {
    await context?.close().catch(() => {});
    await demo.kill();
    await removeServiceDir(dir);
  }
});
