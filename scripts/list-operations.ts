/**
 * Which operations of the ECS model (models/ecs/service-2.json.gz) Wharf implements, computed
 * from the live handler table (`ecsHandlers`), never written down by hand.
 *
 *   npx tsx scripts/list-operations.ts            markdown table for the README
 *
 * The conformance test (test/conformance/ecs-operations.test.ts) uses the same functions and
 * checks over the wire that every operation not in the table answers UnsupportedFeatureException.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadModel } from '../src/api/model';
import { startServer } from '../src/cmd/server';
import { ecsHandlers } from '../src/control';
import { createLogger } from '../src/lib';

export interface OperationRow {
  operation: string;
  implemented: boolean;
  /** The operation's documentation, first sentence, tags stripped. */
  summary: string;
}

function firstSentence(html: string | undefined): string {
  const text = (html ?? '').replace(/<[^>]+>/g, '').replace(/\s+/g, ' ').trim();
  const m = /^(.*?[.!?])(\s|$)/.exec(text);
  const s = (m ? m[1]! : text).replace(/\|/g, '\\|');
  return s.length > 110 ? s.slice(0, 107) + '...' : s;
}

/** The names the handler table has. It is built on a real (throw-away) context, so a table that
 * wires things up eagerly still works. */
export async function implementedOperations(): Promise<Set<string>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wharf-ops-'));
  const srv = await startServer({ host: '127.0.0.1', port: 0, dataDir: dir, region: 'us-east-1', accountId: '000000000000', log: createLogger('list-operations', 'silent') });
  try {
    return new Set(Object.keys(ecsHandlers(srv.ctx)).filter((k) => typeof (ecsHandlers(srv.ctx) as Record<string, unknown>)[k] === 'function'));
  } finally {
    await srv.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function operationRows(): Promise<OperationRow[]> {
  const model = loadModel('ecs') as ReturnType<typeof loadModel> & { operations: Record<string, { documentation?: string }> };
  const implemented = await implementedOperations();
  return Object.keys(model.operations)
    .sort()
    .map((operation) => ({ operation, implemented: implemented.has(operation), summary: firstSentence(model.operations[operation]!.documentation) }));
}

export function markdownTable(rows: OperationRow[]): string {
  const done = rows.filter((r) => r.implemented).length;
  const lines = [
    `Wharf implements ${done} of the ${rows.length} operations of the Amazon ECS API model. The others answer \`UnsupportedFeatureException\`.`,
    '',
    '| Operation | Wharf | What it does |',
    '|---|---|---|',
    ...rows.map((r) => `| ${r.operation} | ${r.implemented ? 'yes' : 'not yet'} | ${r.summary} |`),
  ];
  return lines.join('\n') + '\n';
}

if (require.main === module) {
  operationRows().then(
    (rows) => process.stdout.write(markdownTable(rows)),
    (e: unknown) => {
      process.stderr.write(`list-operations: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    },
  );
}
