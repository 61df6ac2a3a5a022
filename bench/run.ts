/**
 * Runs every benchmark in bench/ that exports `run()`, one after another, and writes each one's
 * figures as a section of BENCHMARKS.md (replacing that section only, so running one benchmark
 * keeps the others' last figures).
 *
 *   npm run bench                               build, then every benchmark
 *   node dist/bench/run.js api-task --quick     only names containing "api-task", smaller sizes
 *   npx tsx bench/run.ts --quick                the same without building
 *
 * A benchmark module exports `run(opts: { quick?: boolean })` (sync or async) and may export
 * `toMarkdown(result)`; without it the result is rendered as tables of its arrays of objects.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

interface BenchModule {
  run(opts: { quick?: boolean }): unknown;
  toMarkdown?(result: unknown): string;
}

const ROOT = path.join(__dirname, __filename.endsWith('.js') && path.basename(path.join(__dirname, '..')) === 'dist' ? '../..' : '..');
const OUTPUT = path.join(ROOT, 'BENCHMARKS.md');

/** bench/*.ts (or *.js when compiled) other than this runner. */
export function benchmarkFiles(dir = __dirname): string[] {
  const ext = path.extname(__filename);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(ext) && !f.endsWith('.d.ts') && !f.endsWith('.test' + ext) && path.basename(f, ext) !== 'run')
    .sort();
}

function cell(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(+v.toFixed(2));
  return String(v ?? '').replace(/\|/g, '\\|');
}

/** A generic rendering: each array of flat objects becomes a table, other members a list. */
export function genericMarkdown(result: unknown): string {
  if (result === null || typeof result !== 'object') return `Result: ${cell(result)}\n`;
  const lines: string[] = [];
  for (const [key, value] of Object.entries(result as Record<string, unknown>)) {
    if (Array.isArray(value) && value.length > 0 && typeof value[0] === 'object') {
      const cols = [...new Set(value.flatMap((row) => Object.keys(row as object)))];
      lines.push(`**${key}**`, '', `| ${cols.join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`);
      for (const row of value as Record<string, unknown>[]) lines.push(`| ${cols.map((c) => cell(row[c])).join(' | ')} |`);
      lines.push('');
    } else {
      lines.push(`- ${key}: \`${JSON.stringify(value)}\``);
    }
  }
  return lines.join('\n') + '\n';
}

const begin = (name: string) => `<!-- bench:${name} -->`;
const end = (name: string) => `<!-- /bench:${name} -->`;

/** Replaces (or appends) the section of `name` in the document. */
export function replaceSection(doc: string, name: string, body: string): string {
  const section = `${begin(name)}\n## ${name}\n\n${body.trimEnd()}\n${end(name)}`;
  const i = doc.indexOf(begin(name));
  const j = doc.indexOf(end(name));
  if (i >= 0 && j > i) return doc.slice(0, i) + section + doc.slice(j + end(name).length);
  return doc.trimEnd() + '\n\n' + section + '\n';
}

const HEADER = `# Benchmarks

Written by \`npm run bench\` (bench/run.ts); each section is replaced when its benchmark runs.
Figures depend on the machine; ratios against a baseline measured in the same run are the
comparable part.
`;

async function main(argv: string[]): Promise<void> {
  const quick = argv.includes('--quick');
  const filters = argv.filter((a) => !a.startsWith('--'));
  const files = benchmarkFiles().filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
  if (files.length === 0) throw new Error(`no benchmark matches ${filters.join(', ')}`);
  let doc = fs.existsSync(OUTPUT) ? fs.readFileSync(OUTPUT, 'utf8') : HEADER;
  for (const file of files) {
    const name = path.basename(file, path.extname(file));
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(path.join(__dirname, file)) as Partial<BenchModule>;
    if (typeof mod.run !== 'function') continue;
    process.stderr.write(`bench: ${name}${quick ? ' (quick)' : ''}...\n`);
    const started = Date.now();
    // The machine's load when the run began and ended: other work on the same cpus moves every
    // figure, and the ratios less only when both sides met the same load.
    const loadBefore = os.loadavg()[0]!;
    const result = await mod.run({ quick });
    const seconds = ((Date.now() - started) / 1000).toFixed(0);
    const body = (typeof mod.toMarkdown === 'function' ? mod.toMarkdown(result) : genericMarkdown(result)) +
      `\n_Last run: ${new Date().toISOString().slice(0, 10)}, ${quick ? 'quick sizes, ' : ''}${seconds} s, ${os.cpus().length} cpu ${os.cpus()[0]?.model ?? ''}, load average ${loadBefore.toFixed(1)} at the start and ${os.loadavg()[0]!.toFixed(1)} at the end._\n`;
    process.stdout.write(`\n## ${name}\n\n${body}`);
    doc = replaceSection(doc, name, body);
    fs.writeFileSync(OUTPUT, doc);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  });
}
