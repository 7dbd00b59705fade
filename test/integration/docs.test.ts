/**
 * The code in the docs is tested: every ```ts block of README.md and docs/*.md is type-checked
 * against the built package (`loadwise`, `loadwise/node`, `loadwise/testing`, `loadwise/redis`
 * resolve to dist/ through the package's own exports) with the project's strict settings;
 * blocks marked `run` also run, against loopback servers standing in for the addresses they
 * name, and print what the guide shows. The marker convention is in docs/README.md; a failure
 * names the Markdown file and line.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, ROOT } from '../support/build.js';
import { limitConcurrency } from '../support/child.js';
import {
  blockSource,
  compareOutput,
  type DocBlock,
  docLine,
  extractBlocks,
} from '../support/doc-blocks.js';

/** Generated files; inside the package so that `loadwise` resolves to it (gitignored). */
const OUT = join(ROOT, '.doctest');
const RUN_TIMEOUT_MS = 30_000;
/** Run blocks run at most this many at a time. */
const CONCURRENCY = 2;

const DOC_FILES = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
];

/** Blocks of every doc, or the error that stopped the extraction of a file. */
const extracted = DOC_FILES.map((file) => {
  try {
    return {
      file,
      blocks: extractBlocks(file, readFileSync(join(ROOT, file), 'utf8')),
      error: undefined,
    };
  } catch (error) {
    return { file, blocks: [] as DocBlock[], error: error as Error };
  }
});
const blocks = extracted.flatMap((e) => e.blocks);
const checked = blocks.filter((b) => b.mode !== 'skip');
const runs = blocks.filter((b) => b.mode === 'run');

function slug(block: DocBlock): string {
  return `${block.file.replace(/[/.]/g, '_')}_L${block.line}`;
}

// ------------------------------------------------------------------ type-checking

/** Diagnostics per block, as `file:line:col message`, from one program over all blocks. */
function typeCheck(list: readonly DocBlock[]): Map<DocBlock, string[]> {
  const files = new Map<string, DocBlock>();
  for (const block of list) {
    const path = join(OUT, `${slug(block)}.ts`);
    writeFileSync(path, blockSource(block));
    files.set(path, block);
  }
  const configFile = ts.readConfigFile(join(ROOT, 'tsconfig.json'), (p) => ts.sys.readFile(p));
  const parsed = ts.parseJsonConfigFileContent(
    { ...configFile.config, include: [], files: [...files.keys()] },
    ts.sys,
    ROOT,
  );
  const program = ts.createProgram([...files.keys()], {
    ...parsed.options,
    noEmit: true,
    // Each block is a module of its own, even without an import.
    moduleDetection: ts.ModuleDetectionKind.Force,
  });
  const result = new Map<DocBlock, string[]>(list.map((b) => [b, []]));
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    const block = d.file === undefined ? undefined : files.get(d.file.fileName);
    if (block === undefined || d.file === undefined || d.start === undefined) {
      // A diagnostic outside the blocks (a broken build, a bad option) fails every block.
      for (const lines of result.values()) lines.push(`TS${d.code}: ${message}`);
      continue;
    }
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    result
      .get(block)!
      .push(`${block.file}:${docLine(block, line + 1)}:${character + 1} TS${d.code}: ${message}`);
  }
  return result;
}

// ------------------------------------------------------------------ running

/** An HTTP server standing in for one address of the docs. */
interface StandIn {
  readonly docAddress: string;
  readonly address: string;
  readonly server: Server;
}
const standIns = new Map<string, StandIn>();

/** Answers `/health...` with 200 `ok` and any other path with `{ backend, path }`. */
async function standIn(docAddress: string): Promise<StandIn> {
  const existing = standIns.get(docAddress);
  if (existing !== undefined) return existing;
  const server = createServer((req, res) => {
    req.resume();
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path.startsWith('/health')) {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ backend: docAddress, path }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const s = { docAddress, address: `127.0.0.1:${(server.address() as AddressInfo).port}`, server };
  standIns.set(docAddress, s);
  return s;
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const addressPattern = (a: string): RegExp =>
  new RegExp(`(?<![\\w.])${escapeRegExp(a)}(?!\\d)`, 'g');

/** The block's source with every `http://host:port` it names (bare `host:port` too) local. */
async function localSource(block: DocBlock): Promise<{ source: string; map: StandIn[] }> {
  let source = blockSource(block);
  const addresses = new Set([...source.matchAll(/http:\/\/([\w.-]+:\d+)/g)].map((m) => m[1]!));
  const map: StandIn[] = [];
  for (const docAddress of [...addresses].sort((a, b) => b.length - a.length)) {
    const s = await standIn(docAddress);
    map.push(s);
    source = source.replace(addressPattern(docAddress), s.address);
  }
  return { source, map };
}

interface Exec {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

function execute(file: string): Promise<Exec> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, RUN_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

const TRANSPILE: ts.CompilerOptions = {
  module: ts.ModuleKind.ESNext,
  target: ts.ScriptTarget.ES2022,
  verbatimModuleSyntax: true,
};

/** Lets at most `CONCURRENCY` blocks run at once. */
const limited = limitConcurrency(CONCURRENCY);

// ------------------------------------------------------------------ the tests

let diagnostics = new Map<DocBlock, string[]>();

beforeAll(() => {
  ensureBuilt();
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  diagnostics = typeCheck(checked);
}, 120_000);

afterAll(async () => {
  await Promise.all([...standIns.values()].map((s) => new Promise((r) => s.server.close(r))));
  standIns.clear();
});

describe('docs: code blocks', () => {
  it('finds the blocks of every doc, and every marker makes sense', () => {
    for (const e of extracted) expect(e.error, e.error?.message).toBeUndefined();
    expect(checked.length).toBeGreaterThanOrEqual(40);
    expect(runs.length).toBeGreaterThanOrEqual(5);
  });

  it('every block left unchecked (a fragment that is not a module) says why', () => {
    for (const block of blocks.filter((b) => b.mode === 'skip')) {
      expect(block.reason?.trim() ?? '', `${block.file}:${block.line}`).not.toBe('');
    }
  });

  for (const block of blocks) {
    const where = `${block.file}:${block.line}`;
    if (block.mode === 'skip') continue;
    it(`${where} type-checks against the built package${block.mode === 'partial' ? ' (partial)' : ''}`, () => {
      const found = diagnostics.get(block) ?? [`${where}: not type-checked`];
      expect(found, `\n${found.join('\n')}\n`).toEqual([]);
    });
  }
});

describe('docs: blocks that run', () => {
  for (const block of runs) {
    const where = `${block.file}:${block.line}`;
    const title =
      block.output === undefined
        ? 'runs'
        : `runs and prints what ${block.file}:${block.output.line} shows`;
    it.concurrent(
      `${where} ${title}`,
      async () => {
        const { source, map } = await localSource(block);
        // Plain JavaScript for Node: the types were checked above.
        const file = join(OUT, `run_${slug(block)}.mjs`);
        writeFileSync(file, ts.transpileModule(source, { compilerOptions: TRANSPILE }).outputText);
        const run = await limited(() => execute(relative(ROOT, file)));
        let stdout = run.stdout;
        for (const s of map) stdout = stdout.replace(addressPattern(s.address), s.docAddress);
        const transcript = `--- stdout ---\n${stdout}\n--- stderr ---\n${run.stderr}`;
        expect(
          run.timedOut,
          `${where} ran longer than ${RUN_TIMEOUT_MS} ms (did it close what it opened?)\n${transcript}`,
        ).toBe(false);
        expect(run.code, `${where} exited with ${run.code}\n${transcript}`).toBe(0);
        if (block.output !== undefined) {
          const mismatch = compareOutput(block.output.text, stdout);
          expect(
            mismatch,
            `${where}: the output differs from ${block.file}:${block.output.line}\n${mismatch}`,
          ).toBeUndefined();
        }
      },
      // The timeout covers the wait for a free slot as well as the run itself.
      RUN_TIMEOUT_MS * Math.ceil(runs.length / CONCURRENCY) + 10_000,
    );
  }
});
