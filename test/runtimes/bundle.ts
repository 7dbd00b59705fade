/**
 * Browser bundles of the packed package, built with esbuild as an application would build them:
 * the scenario page, and two size probes (only `BackendPool` + `createBalancedFetch`, and
 * everything) whose minified and gzipped sizes are reported and held to a budget.
 */
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build, type Metafile } from 'esbuild';

/**
 * The budget of the small bundle (`BackendPool` + `createBalancedFetch`, minified, gzip -9).
 * docs/benchmarks.md records the measured size; raise the budget only with a reason there.
 */
export const SMALL_BUNDLE_BUDGET_GZIP = 32 * 1024;

/**
 * Modules of the package that an application importing only `BackendPool` and
 * `createBalancedFetch` must not carry: if one shows up, tree-shaking (`sideEffects: false`)
 * stopped working for it.
 */
const NOT_IN_SMALL_BUNDLE = [
  'dist/simulator/',
  'dist/routing/',
  'dist/session/',
  'dist/undici/',
  'dist/etcd/',
  'dist/fleet/',
  'dist/discovery/',
  'dist/observability/',
  'dist/health/health-checker.js',
  'dist/hashing/maglev-table.js',
  'dist/algorithms/maglev.js',
  'dist/algorithms/consistent-hash.js',
  'dist/algorithms/peak-ewma.js',
];

export interface BundleSize {
  readonly name: string;
  readonly minifiedBytes: number;
  readonly gzipBytes: number;
  /** Package modules that contribute bytes to the bundle, relative to the package root. */
  readonly modules: readonly string[];
}

/** Bundles `entry` (a file inside `consumerDir`) for browsers into `outfile`. */
export async function bundleForBrowser(
  consumerDir: string,
  entry: string,
  outfile: string,
): Promise<void> {
  await build({
    absWorkingDir: consumerDir,
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    logLevel: 'silent',
  });
}

async function measure(consumerDir: string, name: string, source: string): Promise<BundleSize> {
  const entry = join(consumerDir, `size-${name}.mjs`);
  writeFileSync(entry, source);
  const result = await build({
    absWorkingDir: consumerDir,
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const output = result.outputFiles[0];
  if (output === undefined) throw new Error(`esbuild wrote nothing for ${name}`);
  return {
    name,
    minifiedBytes: output.contents.byteLength,
    gzipBytes: gzipSync(output.contents, { level: 9 }).byteLength,
    modules: packageModules(result.metafile, consumerDir),
  };
}

function packageModules(metafile: Metafile, consumerDir: string): string[] {
  const out = Object.values(metafile.outputs)[0];
  if (out === undefined) return [];
  const root = join(consumerDir, 'node_modules', 'loadwise');
  return Object.entries(out.inputs)
    .filter(([, input]) => input.bytesInOutput > 0)
    .map(([path]) => relative(root, join(consumerDir, path)))
    .filter((path) => path.startsWith('dist/'))
    .sort();
}

export interface SizeReport {
  readonly small: BundleSize;
  readonly all: BundleSize;
  /** What is wrong: over budget, or modules tree-shaking should have dropped. */
  readonly problems: readonly string[];
}

export async function measureBundles(consumerDir: string): Promise<SizeReport> {
  const small = await measure(
    consumerDir,
    'small',
    "export { BackendPool, createBalancedFetch } from 'loadwise';\n",
  );
  const all = await measure(consumerDir, 'all', "export * from 'loadwise';\n");
  const problems: string[] = [];
  if (small.gzipBytes > SMALL_BUNDLE_BUDGET_GZIP) {
    problems.push(
      `the BackendPool + createBalancedFetch bundle is ${small.gzipBytes} B gzipped, over its budget of ${SMALL_BUNDLE_BUDGET_GZIP} B`,
    );
  }
  const kept = small.modules.filter((m) => NOT_IN_SMALL_BUNDLE.some((p) => m.startsWith(p)));
  if (kept.length > 0) {
    problems.push(`tree-shaking kept unused modules in the small bundle: ${kept.join(', ')}`);
  }
  if (small.modules.length >= all.modules.length) {
    problems.push(
      `the small bundle holds ${small.modules.length} modules, the full one ${all.modules.length}`,
    );
  }
  return { small, all, problems };
}
