/**
 * Conformance of the API surface with the ECS model: prints which of the model's operations Wharf
 * implements (as the markdown table of scripts/list-operations.ts, to paste in the README), and
 * checks over the wire that every operation not implemented answers UnsupportedFeatureException
 * (never a fake success), that every implemented one is dispatched (never Unsupported/Unknown),
 * and that names outside the model answer UnknownOperationException.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../../src/api/model';
import { markdownTable, operationRows, type OperationRow } from '../../scripts/list-operations';
import { ecsCall, startTestServer, type TestServer } from '../e2e/helpers/wharf-server';

let srv: TestServer;
let rows: OperationRow[];

before(async () => {
  srv = await startTestServer();
  rows = await operationRows();
});
after(() => srv.close());

test('the table covers every operation of the model, and is printed for the README', () => {
  const model = loadModel('ecs');
  assert.deepEqual(rows.map((r) => r.operation), Object.keys(model.operations).sort());
  assert.ok(rows.some((r) => r.implemented), 'some operations are implemented');
  const table = markdownTable(rows);
  assert.equal(table.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| Operation')).length, rows.length);
  process.stdout.write(`\n${table}\n`);
});

test('every operation not implemented answers UnsupportedFeatureException over the wire, and changes nothing', async () => {
  const missing = rows.filter((r) => !r.implemented);
  const before = await srv.server.store.revision();
  for (const { operation } of missing) {
    const r = await ecsCall(srv, operation, {});
    assert.equal(r.status, 400, `${operation}: HTTP ${r.status} ${r.text}`);
    assert.equal(r.json.__type, 'UnsupportedFeatureException', `${operation}: ${r.text}`);
    assert.match(r.json.message, new RegExp(operation));
  }
  assert.equal(await srv.server.store.revision(), before, 'no unimplemented operation wrote anything');
});

test('every implemented operation is dispatched to its handler', async () => {
  for (const { operation } of rows.filter((r) => r.implemented)) {
    // An empty input may well be invalid; what matters is that the handler, not the fallback, answered.
    const r = await ecsCall(srv, operation, {});
    assert.ok(r.json === undefined || !['UnsupportedFeatureException', 'UnknownOperationException'].includes(r.json.__type), `${operation}: ${r.text}`);
    assert.notEqual(r.status, 500, `${operation} with {} must not be a server error: ${r.text}`);
  }
});

test('names outside the model answer UnknownOperationException', async () => {
  for (const op of ['DescribeEverything', 'listClusters', 'ListClusters2', '']) {
    const r = await ecsCall(srv, op, {});
    assert.equal(r.json.__type, 'UnknownOperationException', `'${op}': ${r.text}`);
  }
});
