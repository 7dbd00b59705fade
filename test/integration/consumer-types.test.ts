/**
 * The built declarations as a consumer's compiler sees them: a small program per setting a
 * project may use, type-checked against dist/ (through the package's own exports) with strict
 * settings and `skipLibCheck: false`, so an error inside a `.d.ts` fails too.
 *
 * - Node projects (`NodeNext`, with and without the DOM lib, and `bundler`) pass undici's
 *   `fetch` to the balanced fetch and the health checker without a cast: undici's types are a
 *   copy of the Fetch API's that TypeScript does not take for the platform's.
 * - A browser project (`lib: ["ES2022", "DOM"]`, no `@types/node`) compiles the `loadwise` and
 *   `loadwise/testing` declarations, which name `Symbol.asyncDispose`.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, ROOT } from '../support/build.js';

/** Inside the package, so that `loadwise` resolves to dist/ (gitignored). */
const OUT = join(ROOT, '.typetest');

const STRICT: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  strict: true,
  noUncheckedIndexedAccess: true,
  exactOptionalPropertyTypes: true,
  verbatimModuleSyntax: true,
  skipLibCheck: false,
  noEmit: true,
};

const NODE_APP = `
import { Agent, fetch as undiciFetch, type RequestInit as UndiciInit } from 'undici';
import { BackendPool, createBalancedFetch, type FetchFunction, HealthChecker, httpProbe } from 'loadwise';
import { connect } from 'loadwise/node';
import { ManualClock } from 'loadwise/testing';
import { BalancedDispatcher } from 'loadwise/undici';

const pool = new BackendPool({ backends: ['http://10.0.1.10:8080'], clock: new ManualClock() });
const agent = new Agent({ connections: 4 });

// undici's fetch as it is, and with a dispatcher bound: no cast.
createBalancedFetch(pool, { fetch: undiciFetch });
createBalancedFetch(pool, {
  fetch: (url, init: UndiciInit) => undiciFetch(url, { ...init, dispatcher: agent }),
});
new HealthChecker(pool, { fetch: undiciFetch });
httpProbe({ fetch: (url, init) => undiciFetch(url, { ...init, dispatcher: agent }) });

// A test double still sees the platform's types.
const double: FetchFunction = async (url, init) => new Response(url + (init.method ?? 'GET'));
const res: Response = await createBalancedFetch(pool, { fetch: double })('/x');
void res;

{
  await using scoped = new BackendPool({ backends: ['http://10.0.1.11:8080'] });
  void scoped;
}
void connect;
void new BalancedDispatcher(pool);
`;

const BROWSER_APP = `
import { BackendPool, createBalancedFetch, HealthChecker, SessionPersistenceManager } from 'loadwise';
import { ManualClock, seededRandom } from 'loadwise/testing';

const pool = new BackendPool({
  backends: ['https://api.example.com'],
  clock: new ManualClock(),
  random: seededRandom(1),
});
new HealthChecker(pool).start();
new SessionPersistenceManager(pool);
const res: Response = await createBalancedFetch(pool)('/x');
document.title = String(res.status);
await pool.close();
`;

interface Setting {
  readonly name: string;
  readonly source: string;
  readonly options: ts.CompilerOptions;
}

const NODE_NEXT: ts.CompilerOptions = {
  ...STRICT,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  lib: ['lib.es2023.d.ts'],
  types: ['node'],
};

const SETTINGS: Setting[] = [
  { name: 'Node: NodeNext, no DOM lib', source: NODE_APP, options: NODE_NEXT },
  {
    name: 'Node: NodeNext with the DOM lib',
    source: NODE_APP,
    options: { ...NODE_NEXT, lib: ['lib.es2023.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'] },
  },
  {
    name: 'Node: bundler resolution',
    source: NODE_APP,
    options: {
      ...NODE_NEXT,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
    },
  },
  {
    name: 'browser: ES2022 + DOM, no @types/node',
    source: BROWSER_APP,
    options: {
      ...STRICT,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      lib: ['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
      types: [],
    },
  },
];

function diagnostics(file: string, options: ts.CompilerOptions): string[] {
  const program = ts.createProgram([file], {
    ...options,
    moduleDetection: ts.ModuleDetectionKind.Force,
  });
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (d.file === undefined || d.start === undefined) return `TS${d.code}: ${message}`;
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    return `${d.file.fileName.replace(ROOT, '.')}:${line + 1}:${character + 1} TS${d.code}: ${message}`;
  });
}

beforeAll(() => {
  ensureBuilt();
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
}, 120_000);

describe('the declarations in a consumer project', () => {
  for (const [i, setting] of SETTINGS.entries()) {
    it(`${setting.name}: type-checks`, () => {
      const file = join(OUT, `consumer-${i}.ts`);
      writeFileSync(file, setting.source);
      const found = diagnostics(file, setting.options);
      expect(found, `\n${found.join('\n')}\n`).toEqual([]);
    }, 60_000);
  }
});
