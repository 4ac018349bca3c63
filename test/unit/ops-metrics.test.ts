import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RecordRejectReason } from '../../src/errors.js';
import { DaemonMetrics } from '../../src/ops/metrics.js';
import type { DeadLetter, ResultRecord } from '../../src/records.js';
import { parseMetrics } from '../support/metrics.js';

function results(count: number, task: number): ResultRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    id: String(i),
    source: { topic: 't', partition: 0, offset: String(i) },
    task,
    newTask: false,
    taskConfidence: 1,
    confidence: 0.9,
    entropy: 0.3,
    prediction: 1,
    maskVersion: 1,
  }));
}

const BUILD = { version: '9.8.7', node: 'v20.1.2', backend: 'wasm' };

function metricsOf(): DaemonMetrics {
  return new DaemonMetrics(
    {
      tasks: () => ({ total: 3, frozen: 1, maskBytes: 3 * 34_404 }),
      ready: () => true,
      prequentialAccuracies: () => [0.15, 0.82, 0.97],
    },
    BUILD,
  );
}

function deadLetter(offset: string, reason: RecordRejectReason): DeadLetter {
  return { source: { topic: 't', partition: 0, offset }, reason, detail: '', key: null, value: null };
}

test('metrics count what the daemon reports, with bounded labels and never a task id', async () => {
  const metrics = metricsOf();
  metrics.received('t/0', 300, 42);
  const batch = {
    partition: 't/0',
    firstOffset: '0',
    lastOffset: '127',
    time: 0,
    checked: true,
    inferSeconds: 0.02,
    trainSteps: 8,
    trainSeconds: 0.1,
    prequential: { correct: 90, labelled: 128 },
  };
  metrics.batch({ ...batch, results: results(128, 7), decision: { kind: 'allocate', reason: 'uncertain' } });
  metrics.batch({
    ...batch,
    results: results(100, 7),
    decision: { kind: 'route', reason: 'fast_path' },
    checked: false,
    trainSteps: 0,
    prequential: { correct: 0, labelled: 0 },
  });
  metrics.deadLettered([deadLetter('1', 'E_RECORD_JSON')]);
  metrics.committed({ seconds: 0.004, outcome: 'applied' });
  metrics.committed({ seconds: 5, outcome: 'failed' });
  metrics.events([{ type: 'mask_frozen', task: 7, steps: 4000, time: 'x' }]);
  metrics.jobRun({ job: 'integrity', outcome: 'ok', seconds: 0.2 });

  const text = await metrics.text();
  const values = parseMetrics(text);
  const series = (name: string) => values.get(name);
  assert.equal(series('supsupd_records_in_total{partition="t/0"}'), 300);
  assert.equal(series('supsupd_records_out_total'), 228);
  assert.equal(series('supsupd_dead_letters_total{reason="E_RECORD_JSON"}'), 1);
  assert.equal(series('supsupd_allocations_total{reason="uncertain"}'), 1);
  assert.equal(series('supsupd_task_checks_total'), 1);
  assert.equal(series('supsupd_entropy_count'), 228);
  assert.equal(series('supsupd_confidence_bucket{le="0.9"}'), 228);
  assert.equal(series('supsupd_confidence_bucket{le="0.8"}'), 0);
  assert.equal(series('supsupd_task_inference_seconds_count{checked="true"}'), 1);
  assert.equal(series('supsupd_train_steps_total'), 8);
  assert.equal(series('supsupd_store_write_seconds_count{outcome="failed"}'), 1);
  assert.equal(series('supsupd_consumer_lag{partition="t/0"}'), 42);
  assert.equal(series('supsupd_events_total{type="mask_frozen"}'), 1);
  assert.equal(series('supsupd_job_runs_total{job="integrity",outcome="ok"}'), 1);
  assert.equal(series('supsupd_tasks'), 3);
  assert.equal(series('supsupd_tasks_frozen'), 1);
  assert.equal(series('supsupd_mask_bytes'), 103_212);
  assert.equal(series('supsupd_ready'), 1);
  assert.equal(series('supsupd_prequential_labelled_total'), 128);
  assert.equal(series('supsupd_prequential_correct_total'), 90);
  assert.equal(series('supsupd_tasks_by_prequential_accuracy{le="0.1"}'), 0);
  assert.equal(series('supsupd_tasks_by_prequential_accuracy{le="0.2"}'), 1);
  assert.equal(series('supsupd_tasks_by_prequential_accuracy{le="0.9"}'), 2);
  assert.equal(series('supsupd_tasks_by_prequential_accuracy{le="1"}'), 3);
  assert.ok(text.includes('supsupd_process_resident_memory_bytes'), 'process metrics are exported');
  assert.doesNotMatch(text, /[{,]task="/, 'no task ids in labels');
});

test('build info: one series, value 1, labelled with the version, Node and backend given', async () => {
  const metrics = metricsOf();
  assert.equal(
    await metrics.registry.getSingleMetricAsString('supsupd_build_info'),
    [
      '# HELP supsupd_build_info Always 1; the labels say which supsupd, Node and tfjs backend run.',
      '# TYPE supsupd_build_info gauge',
      'supsupd_build_info{version="9.8.7",node="v20.1.2",backend="wasm"} 1',
    ].join('\n'),
  );
});

test('dead letters by reason: every code of the fixed set from 0, counted per letter', async () => {
  const metrics = metricsOf();
  metrics.deadLettered([deadLetter('1', 'E_RECORD_JSON'), deadLetter('2', 'E_RECORD_LABEL')]);
  metrics.deadLettered([deadLetter('5', 'E_RECORD_JSON')]);
  assert.equal(
    await metrics.registry.getSingleMetricAsString('supsupd_dead_letters_total'),
    [
      '# HELP supsupd_dead_letters_total Records sent to the dead-letter destination, by reason code (every code of the fixed set, from 0).',
      '# TYPE supsupd_dead_letters_total counter',
      'supsupd_dead_letters_total{reason="E_RECORD_TOO_LARGE"} 0',
      'supsupd_dead_letters_total{reason="E_RECORD_CONTENT_TYPE"} 0',
      'supsupd_dead_letters_total{reason="E_RECORD_JSON"} 2',
      'supsupd_dead_letters_total{reason="E_RECORD_PROTO"} 0',
      'supsupd_dead_letters_total{reason="E_RECORD_SCHEMA"} 0',
      'supsupd_dead_letters_total{reason="E_RECORD_DIMENSION"} 0',
      'supsupd_dead_letters_total{reason="E_RECORD_NONFINITE"} 0',
      'supsupd_dead_letters_total{reason="E_RECORD_LABEL"} 1',
      'supsupd_dead_letters_total{reason="E_RECORD_ID"} 0',
      'supsupd_dead_letters_total{reason="E_RECORD_INTERNAL"} 0',
    ].join('\n'),
  );
});

test('source state: no series before the source starts, then 1 for its state and 0 for the others', async () => {
  const metrics = metricsOf();
  const stateSeries = async () =>
    (await metrics.registry.getSingleMetricAsString('supsupd_source_state'))
      .split('\n')
      .filter((line) => !line.startsWith('#'));
  assert.deepEqual(await stateSeries(), []);
  metrics.source({ state: 'running', time: 1_000 });
  metrics.source({ state: 'finished', time: 2_000 });
  assert.deepEqual(await stateSeries(), [
    'supsupd_source_state{state="running"} 0',
    'supsupd_source_state{state="finished"} 1',
    'supsupd_source_state{state="stopped"} 0',
    'supsupd_source_state{state="failed"} 0',
  ]);
});
