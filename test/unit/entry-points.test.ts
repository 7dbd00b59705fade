import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
// Static imports/exports that survive compilation (not `import type`), and dynamic imports.
const STATIC =
  /^\s*(?:import|export)\s+(?!type\s)[^'";]*?from\s*['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm;
const DYNAMIC = /import\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Source text without comments, so examples in TSDoc are not taken for imports. */
function code(file: string): string {
  return readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');
}

/**
 * Every file reachable from `entry` through runtime imports, with what it imports statically.
 * Dynamic imports of packages are left out: they are how optional peers load lazily.
 */
function graph(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    const text = code(file);
    const specs = [...text.matchAll(STATIC)].map((m) => (m[1] ?? m[2])!);
    const dynamicLocal = [...text.matchAll(DYNAMIC)]
      .map((m) => m[1]!)
      .filter((x) => x.startsWith('.'));
    seen.set(file, [...specs, ...dynamicLocal]);
    for (const s of seen.get(file)!) {
      if (s.startsWith('.')) visit(resolve(dirname(file), s.replace(/\.js$/, '.ts')));
    }
  };
  visit(join(root, entry));
  return seen;
}

function offending(entry: string, allowed: (spec: string) => boolean): string[] {
  const out: string[] = [];
  for (const [file, specs] of graph(entry)) {
    for (const s of specs)
      if (!s.startsWith('.') && !allowed(s)) out.push(`${relative(root, file)} imports ${s}`);
  }
  return out;
}

describe('entry points', () => {
  it('the core entry reaches no node: module and no optional peer (it runs outside Node too)', () => {
    const runtimeDeps = ['eventemitter3', 'p-retry', 'lru-cache', 'tslib'];
    expect(offending('src/index.ts', (s) => runtimeDeps.includes(s))).toEqual([]);
  });

  it('loadwise/testing reaches nothing outside the package', () => {
    expect(offending('src/testing/index.ts', () => false)).toEqual([]);
  });

  it('loadwise/undici reaches only the core, undici and node: modules', () => {
    const runtimeDeps = ['eventemitter3', 'p-retry', 'lru-cache', 'tslib', 'undici'];
    expect(
      offending('src/undici/index.ts', (s) => runtimeDeps.includes(s) || s.startsWith('node:')),
    ).toEqual([]);
    // The core entry must not pull undici in.
    expect(offending('src/index.ts', (s) => s !== 'undici')).toEqual([]);
  });

  it('loadwise/etcd loads etcd3 only on demand (an optional peer) and reaches no other package', () => {
    const runtimeDeps = ['eventemitter3', 'tslib', 'node:buffer'];
    expect(offending('src/etcd/index.ts', (s) => runtimeDeps.includes(s))).toEqual([]);
    const file = join(root, 'src/etcd/etcd-discovery.ts');
    expect(new Set([...code(file).matchAll(DYNAMIC)].map((m) => m[1]))).toEqual(new Set(['etcd3']));
  });

  it('the graph walk does find imports (so the checks above can fail)', () => {
    expect(graph('src/index.ts').size).toBeGreaterThan(20);
    expect(offending('src/node/index.ts', (s) => !s.startsWith('node:')).length).toBeGreaterThan(0);
  });
});
