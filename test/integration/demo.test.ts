import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const tsx = join(root, 'node_modules/.bin/tsx');

function demo(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    execFile(
      tsx,
      ['examples/demo.ts', '--plain', ...args],
      { cwd: root, timeout: 40_000 },
      (error, stdout, stderr) => {
        resolve({
          code: error ? ((error as { code?: number }).code ?? 1) : 0,
          out: `${stdout}${stderr}`,
        });
      },
    );
  });
}

describe('npm run demo', () => {
  it('explains its flags with --help', async () => {
    const { code, out } = await demo(['--help']);
    expect(code).toBe(0);
    expect(out).toMatch(/--scenario/);
    expect(out).toMatch(/peak-ewma/);
  });

  it('refuses an unknown algorithm with exit code 2', async () => {
    const { code, out } = await demo(['-a', 'fastest']);
    expect(code).toBe(2);
    expect(out).toMatch(/Unknown algorithm "fastest"/);
  });

  it('runs the mixed scenario to a summary with nothing left in flight', async () => {
    const { code, out } = await demo(['--calls', '600', '--rate', '200']);
    expect(code, out).toBe(0);
    expect(out).toMatch(/Summary — 600 calls with peak-ewma/);
    expect(out).toMatch(/phoenix crashes/);
    expect(out).toMatch(/in flight after the run: 0/);
  }, 45_000);

  it('keeps traffic flowing in panic mode when every readiness probe fails', async () => {
    const { code, out } = await demo([
      '-s',
      'outage',
      '-a',
      'round-robin',
      '--calls',
      '1200',
      '--rate',
      '300',
    ]);
    expect(code, out).toBe(0);
    expect(out).toMatch(/ALL UNHEALTHY/);
    expect(out).toMatch(/PANIC/);
    // Calls keep succeeding through the outage (a loaded machine may time out a handful).
    const success = Number(/succeeded: \d+ \(([\d.]+)%\)/.exec(out)?.[1]);
    expect(success).toBeGreaterThanOrEqual(98);
  }, 45_000);
});
