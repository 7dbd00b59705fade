/**
 * `npm run bench [-- name ...]`: runs every benchmark section (or the named ones) and prints
 * markdown. Each section compares against a baseline measured in the same run.
 */
import type { Section } from './harness.js';

type Runner = () => Promise<Section | Section[]>;

/** Sections in the order they print. Each module default-exports a Runner. */
const sections: Record<string, () => Promise<{ default: Runner }>> = {
  picks: () => import('./picks.js'),
  sessions: () => import('./sessions.js'),
  hashing: () => import('./hashing.js'),
  fetch: () => import('./fetch.js'),
  dispatcher: () => import('./dispatcher.js'),
  observability: () => import('./observability.js'),
  routing: () => import('./routing.js'),
  tail: () => import('./tail-latency.js'),
  memory: () => import('./memory.js'),
  etcd: () => import('./etcd.js'),
  zones: () => import('./zones.js'),
  restart: () => import('./warm-restart.js'),
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((w) => !(w in sections));
if (unknown.length > 0) {
  console.error(
    `Unknown section(s): ${unknown.join(', ')}. Known: ${Object.keys(sections).join(', ')}`,
  );
  process.exit(2);
}
console.log(
  `# loadwise benchmarks\n\nNode ${process.version}, ${new Date().toISOString().slice(0, 10)}\n`,
);
for (const [name, load] of Object.entries(sections)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  const result = await (await load()).default();
  for (const s of Array.isArray(result) ? result : [result]) {
    console.log(`## ${s.title}\n\n${s.body}\n`);
  }
}
