/**
 * What `npm pack` puts in the tarball: every file a source map or declaration map of dist/
 * points to is in it too, so a stack trace (`node --enable-source-maps`, tsx, vitest) or an
 * editor's "go to definition" leads to a file the user has, not to a path missing from
 * node_modules.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, ROOT } from '../support/build.js';

let packed: Set<string>;

beforeAll(() => {
  ensureBuilt();
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const out = execFileSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  const [info] = JSON.parse(out) as [{ files: { path: string }[] }];
  packed = new Set(info.files.map((f) => f.path));
}, 60_000);

describe('the packed package', () => {
  it('holds every file its source maps and declaration maps name', () => {
    const maps = [...packed].filter((p) => p.endsWith('.map'));
    expect(maps.length).toBeGreaterThan(100);
    const missing: string[] = [];
    for (const map of maps) {
      const { sources } = JSON.parse(readFileSync(join(ROOT, map), 'utf8')) as {
        sources: string[];
      };
      for (const source of sources) {
        const path = relative(ROOT, normalize(join(ROOT, dirname(map), source)));
        if (!packed.has(path)) missing.push(`${map} -> ${path}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('declares no typed array with a buffer type argument (TypeScript 5.7 syntax)', () => {
    // `Uint32Array<ArrayBuffer>` is what TypeScript 5.7+ infers for `new Uint32Array(n)`; in a
    // declaration it breaks every project on an older compiler (getting-started says 5.0).
    const found = [...packed]
      .filter((p) => p.endsWith('.d.ts'))
      .flatMap((p) =>
        readFileSync(join(ROOT, p), 'utf8')
          .split('\n')
          .filter((line) =>
            /\b(?:Uint8|Uint16|Uint32|Int8|Int16|Int32|Float32|Float64|BigInt64|BigUint64|Uint8Clamped)Array</.test(
              line,
            ),
          )
          .map((line) => `${p}: ${line.trim()}`),
      );
    expect(found).toEqual([]);
  });

  it('holds no tests, benchmarks or examples', () => {
    const stray = [...packed].filter((p) => /^(test|bench|examples|scripts)\//.test(p));
    expect(stray).toEqual([]);
  });
});
