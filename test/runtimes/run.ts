/**
 * `npm run test:runtimes`: runs one scenario (test/runtimes/scenario.ts) in every runtime the
 * README names, against the packed package installed in a fresh consumer project, and prints
 * one table. Node runs as this process's own binary; Bun and Deno are installed, pinned, from
 * their npm packages into a cache under the temp folder (never as dependencies of loadwise);
 * Chromium is the system's (`CHROMIUM_PATH`, default /usr/bin/chromium), driven headless over
 * the DevTools protocol, with the scenario in a page and in a dedicated worker. It also reports
 * browser bundle sizes and holds the small one to its budget. Any failure exits with code 1.
 *
 * Usage: tsx test/runtimes/run.ts [node] [bun] [deno] [chromium] [--verbose]   (default: all)
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import * as source from '../../src/index.js';
import * as sourceTesting from '../../src/testing/index.js';
import { runInChromium } from './browser.js';
import { bundleForBrowser, measureBundles, SMALL_BUNDLE_BUDGET_GZIP } from './bundle.js';
import { deterministicAnswers, type ScenarioConfig, type ScenarioResult } from './scenario.js';
import {
  type Running,
  refusedUrl,
  startBackend,
  startHangServer,
  startResetServer,
  startStaticServer,
} from './servers.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Pinned runtime versions (npm packages `bun` and `deno`). */
const PINNED = { bun: '1.4.5', deno: '2.9.6' } as const;
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
/** Longest a runtime may take for the whole scenario. */
const RUN_TIMEOUT_MS = 90_000;
/** A runtime must exit on its own this soon after printing its result (nothing left running). */
const EXIT_GRACE_MS = 10_000;
const RESULT_PREFIX = 'LOADWISE_RESULT ';

type Outcomes = ScenarioResult['outcomes'];
/** Refused connections: browsers report every network failure alike, so it reads as a reset. */
const NATIVE: Outcomes = { refused: 'connect', reset: 'reset', timeout: 'timeout' };
const BROWSER: Outcomes = { refused: 'reset', reset: 'reset', timeout: 'timeout' };

interface Row {
  runtime: string;
  version: string;
  result: ScenarioResult | undefined;
  expected: Outcomes;
  problems: string[];
  seconds: number;
}

// ------------------------------------------------------------------ processes

interface Exec {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  lingered: boolean;
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Exec> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let lingered = false;
    let graceTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, RUN_TIMEOUT_MS);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (graceTimer === undefined && stdout.includes(RESULT_PREFIX)) {
        graceTimer = setTimeout(() => {
          lingered = true;
          child.kill('SIGKILL');
        }, EXIT_GRACE_MS);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      clearTimeout(graceTimer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      clearTimeout(graceTimer);
      resolve({ code, stdout, stderr, timedOut, lingered });
    });
  });
}

function runSync(command: string, args: string[], cwd: string): string {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${r.status}):\n${r.stderr}${r.stdout}`);
  }
  return r.stdout;
}

// ------------------------------------------------------------------ set-up

/** Packs the package and installs the tarball into a new consumer project, as a user would. */
function installConsumer(work: string): string {
  if (!existsSync(join(ROOT, 'dist', 'index.js'))) {
    throw new Error('dist/ is missing: run `npm run build` first (npm run test:runtimes does)');
  }
  const tarball = runSync('npm', ['pack', '--silent', '--pack-destination', work], ROOT)
    .trim()
    .split('\n')
    .pop()!;
  const consumer = join(work, 'consumer');
  mkdirSync(consumer);
  writeFileSync(
    join(consumer, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  );
  npmInstall(join(work, tarball), consumer);
  return consumer;
}

/** `npm install <spec>` in `dir`: no scripts, no lock file, no audit. */
function npmInstall(spec: string, dir: string): void {
  runSync(
    'npm',
    ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock', spec],
    dir,
  );
}

/**
 * Installs `name@version` from npm into a cache folder (once) and returns its binary. The
 * package's install script is not run: the binary comes from the platform package it depends on
 * (`@oven/bun-<platform>`, `@deno/<platform>`).
 */
function installRuntime(name: 'bun' | 'deno', version: string): string {
  const dir = join(tmpdir(), 'loadwise-runtimes-cache', `${name}-${version}`);
  const find = (): string | undefined => {
    const scope = join(dir, 'node_modules', name === 'bun' ? '@oven' : '@deno');
    if (!existsSync(scope)) return undefined;
    for (const pkg of readdirSync(scope)) {
      const bin = join(scope, pkg, ...(name === 'bun' ? ['bin', 'bun'] : ['deno']));
      if (existsSync(bin)) return bin;
    }
    return undefined;
  };
  let bin = find();
  if (bin === undefined) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ private: true }));
    npmInstall(`${name}@${version}`, dir);
    bin = find();
    if (bin === undefined) throw new Error(`${name}@${version}: no binary for this platform`);
  }
  const reported = runSync(bin, ['--version'], dir);
  if (!reported.includes(version)) {
    throw new Error(`${bin} reports ${reported.trim()}, expected ${version}`);
  }
  return bin;
}

function entrySource(config: ScenarioConfig, finish: string): string {
  return [
    "import * as lib from 'loadwise';",
    "import * as testing from 'loadwise/testing';",
    "import { runScenario } from './scenario.mjs';",
    `const config = ${JSON.stringify(config)};`,
    finish,
    '',
  ].join('\n');
}

const CLI_FINISH = `const result = await runScenario(lib, testing, config);
console.log(${JSON.stringify(RESULT_PREFIX)} + JSON.stringify(result));`;
const PAGE_FINISH = `runScenario(lib, testing, config).then(
  (result) => { globalThis.__loadwiseResult = result; },
  (error) => { globalThis.__loadwiseResult = { error: String(error && error.stack || error) }; },
);`;
const WORKER_FINISH = `runScenario(lib, testing, config).then(
  (result) => postMessage(result),
  (error) => postMessage({ error: String(error && error.stack || error) }),
);`;
const WORKER_PAGE = `<!doctype html><meta charset="utf-8"><title>loadwise worker</title>
<script type="module">
const worker = new Worker('/worker.js', { type: 'module' });
worker.onmessage = (e) => { globalThis.__loadwiseResult = e.data; };
worker.onerror = (e) => { globalThis.__loadwiseResult = { error: 'worker error: ' + e.message }; };
</script>`;
const PAGE = `<!doctype html><meta charset="utf-8"><title>loadwise page</title>
<script type="module" src="/page.js"></script>`;

// ------------------------------------------------------------------ runtimes

function parseResult(exec: Exec, problems: string[]): ScenarioResult | undefined {
  const line = exec.stdout.split('\n').find((l) => l.startsWith(RESULT_PREFIX));
  if (exec.timedOut) problems.push(`did not finish within ${RUN_TIMEOUT_MS / 1000} s`);
  if (exec.lingered) {
    problems.push(
      `did not exit on its own within ${EXIT_GRACE_MS / 1000} s of finishing (a timer or socket kept it alive)`,
    );
  } else if (exec.code !== 0 && !exec.timedOut) {
    problems.push(`exited with code ${exec.code}`);
  }
  if (line === undefined) {
    problems.push(`printed no result\n${exec.stdout}\n${exec.stderr}`.trim());
    return undefined;
  }
  return JSON.parse(line.slice(RESULT_PREFIX.length)) as ScenarioResult;
}

async function runCli(
  runtime: string,
  version: string,
  command: string,
  args: string[],
  consumer: string,
  config: ScenarioConfig,
  env: NodeJS.ProcessEnv = {},
): Promise<Row> {
  const started = Date.now();
  const problems: string[] = [];
  const file = `entry-${runtime}.mjs`;
  writeFileSync(join(consumer, file), entrySource({ ...config, runtime }, CLI_FINISH));
  const exec = await run(command, [...args, file], consumer, {
    PATH: process.env['PATH'],
    HOME: process.env['HOME'],
    NO_COLOR: '1',
    ...env,
  });
  const result = parseResult(exec, problems);
  return {
    runtime,
    version,
    result,
    expected: NATIVE,
    problems,
    seconds: (Date.now() - started) / 1000,
  };
}

async function runChromium(work: string, consumer: string, config: ScenarioConfig): Promise<Row[]> {
  const started = Date.now();
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);
  }
  writeFileSync(
    join(consumer, 'entry-page.mjs'),
    entrySource({ ...config, runtime: 'chromium' }, PAGE_FINISH),
  );
  writeFileSync(
    join(consumer, 'entry-worker.mjs'),
    entrySource({ ...config, runtime: 'chromium-worker' }, WORKER_FINISH),
  );
  await bundleForBrowser(consumer, 'entry-page.mjs', join(work, 'page.js'));
  await bundleForBrowser(consumer, 'entry-worker.mjs', join(work, 'worker.js'));
  const js = 'text/javascript; charset=utf-8';
  const html = 'text/html; charset=utf-8';
  const site = await startStaticServer(
    new Map<string, readonly [string, string]>([
      ['/page.html', [html, PAGE]],
      ['/worker.html', [html, WORKER_PAGE]],
      ['/page.js', [js, readFileSync(join(work, 'page.js'), 'utf8')]],
      ['/worker.js', [js, readFileSync(join(work, 'worker.js'), 'utf8')]],
    ]),
  );
  try {
    const run = await runInChromium(
      CHROMIUM,
      { page: `${site.url}/page.html`, worker: `${site.url}/worker.html` },
      RUN_TIMEOUT_MS,
    );
    const seconds = (Date.now() - started) / 1000;
    return Object.entries(run.pages).map(([name, page]) => {
      const problems = [...page.errors];
      const value = page.result as (ScenarioResult & { error?: string }) | undefined;
      if (value === undefined) {
        problems.push(`the page gave no result; console: ${page.console.join(' | ')}`);
      } else if (value.error !== undefined) problems.push(value.error);
      return {
        runtime: name === 'page' ? 'Chromium (page)' : 'Chromium (worker)',
        version: run.version.replace(/^(Headless)?Chrome\//, ''),
        result: value?.checks === undefined ? undefined : value,
        expected: BROWSER,
        problems,
        seconds,
      };
    });
  } finally {
    await site.close();
  }
}

// ------------------------------------------------------------------ report

function judge(row: Row, reference: readonly string[]): void {
  const r = row.result;
  if (r === undefined) return;
  for (const c of r.checks) if (!c.ok) row.problems.push(`${c.name}: ${c.detail}`);
  for (const kind of ['refused', 'reset', 'timeout'] as const) {
    if (r.outcomes[kind] !== row.expected[kind]) {
      row.problems.push(
        `a ${kind} attempt was classified ${r.outcomes[kind]}, expected ${row.expected[kind]}`,
      );
    }
  }
  if (r.answers.join() !== reference.join()) {
    row.problems.push(
      `deterministic answers ${r.answers.join(' ')} differ from ${reference.join(' ')}`,
    );
  }
}

function table(rows: Row[], reference: readonly string[]): string {
  const header = [
    'runtime',
    'version',
    'checks',
    'refused',
    'reset',
    'timeout',
    'answers',
    'result',
  ];
  const lines = rows.map((row) => {
    const r = row.result;
    const passed =
      r === undefined ? '-' : `${r.checks.filter((c) => c.ok).length}/${r.checks.length}`;
    const same =
      r === undefined ? '-' : r.answers.join() === reference.join() ? 'same' : 'DIFFERENT';
    return [
      row.runtime,
      row.version,
      passed,
      r?.outcomes.refused ?? '-',
      r?.outcomes.reset ?? '-',
      r?.outcomes.timeout ?? '-',
      same,
      row.problems.length === 0 ? `pass (${row.seconds.toFixed(1)} s)` : 'FAIL',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]): string =>
    `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [fmt(header), fmt(widths.map((w) => '-'.repeat(w))), ...lines.map(fmt)].join('\n');
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

// ------------------------------------------------------------------ main

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const verbose = args.includes('--verbose');
  const wanted = new Set(args.filter((a) => a !== '--verbose'));
  const want = (name: string): boolean => wanted.size === 0 || wanted.has(name);
  const work = mkdtempSync(join(tmpdir(), 'loadwise-runtimes-'));
  const servers: Running[] = [];
  const rows: Row[] = [];
  let failed = false;
  try {
    const consumer = installConsumer(work);
    await build({
      absWorkingDir: ROOT,
      entryPoints: [join(ROOT, 'test', 'runtimes', 'scenario.ts')],
      outfile: join(consumer, 'scenario.mjs'),
      format: 'esm',
      platform: 'neutral',
      target: 'es2022',
      logLevel: 'silent',
    });
    const a = await startBackend('a');
    const b = await startBackend('b');
    const reset = await startResetServer();
    const hang = await startHangServer();
    servers.push(a, b, reset, hang);
    const config: ScenarioConfig = {
      runtime: '',
      backends: [a.url, b.url],
      refused: await refusedUrl(),
      reset: reset.url,
      hang: hang.url,
    };

    if (want('node')) {
      rows.push(
        await runCli('Node', process.version.slice(1), process.execPath, [], consumer, config),
      );
    }
    if (want('bun')) {
      const bun = installRuntime('bun', PINNED.bun);
      rows.push(await runCli('Bun', PINNED.bun, bun, [], consumer, config));
    }
    if (want('deno')) {
      const deno = installRuntime('deno', PINNED.deno);
      rows.push(
        await runCli(
          'Deno',
          PINNED.deno,
          deno,
          ['run', '--allow-net=127.0.0.1', '--no-prompt'],
          consumer,
          config,
          {
            DENO_DIR: join(tmpdir(), 'loadwise-runtimes-cache', 'deno-dir'),
            DENO_NO_UPDATE_CHECK: '1',
          },
        ),
      );
    }
    if (want('chromium')) rows.push(...(await runChromium(work, consumer, config)));

    // The reference: the source's answers, which the unit tests check (the ring against
    // libketama's own output).
    const reference = await deterministicAnswers(source, sourceTesting);
    for (const row of rows) judge(row, reference);
    console.log(table(rows, reference));
    if (verbose) {
      console.log(`\nreference answers: ${reference.join(' ')}`);
      for (const row of rows) {
        console.log(`\n${row.runtime}:`);
        for (const c of row.result?.checks ?? []) {
          console.log(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
        }
      }
    }
    for (const row of rows) {
      for (const p of row.problems) console.log(`\n${row.runtime}: ${p}`);
      if (row.problems.length > 0) failed = true;
    }

    const sizes = await measureBundles(consumer);
    console.log('\nBrowser bundles (esbuild, minified, ESM; gzip -9):');
    for (const s of [sizes.small, sizes.all]) {
      const what = s.name === 'small' ? 'BackendPool + createBalancedFetch' : 'everything';
      console.log(
        `  ${what.padEnd(34)} ${kib(s.minifiedBytes).padStart(10)} min ${kib(s.gzipBytes).padStart(10)} gzip  ${s.modules.length} modules`,
      );
    }
    console.log(`  budget of the small bundle: ${kib(SMALL_BUNDLE_BUDGET_GZIP)} gzip`);
    for (const p of sizes.problems) {
      console.log(`\nbundle: ${p}`);
      failed = true;
    }
  } finally {
    await Promise.all(servers.map((s) => s.close()));
    rmSync(work, { recursive: true, force: true });
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
