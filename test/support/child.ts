/**
 * A TypeScript file run in a child process, as `node --import tsx <file>` from the repository's
 * root, with a guard that kills it after a time limit.
 */
import { spawn } from 'node:child_process';
import { ROOT } from './build.js';

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Whether the time limit ran out and the child was killed. */
  killedByGuard: boolean;
  /** `Date.now()` when the child's output had closed. */
  exitedAt: number;
  stdout: string;
  stderr: string;
}

export interface ChildOptions {
  /** The child is killed (SIGKILL) once this long has passed. */
  limitMs: number;
  /** Node flags before `--import tsx`, e.g. `--expose-gc`. @default [] */
  nodeArgs?: readonly string[];
  /** Variables added to this process's environment. @default {} */
  env?: Readonly<Record<string, string>>;
}

/** Runs `file` with `args`; resolves once its output has closed (every line printed is in). */
export function runTsChild(
  file: string,
  args: readonly string[],
  options: ChildOptions,
): Promise<ChildResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  // The test runner's own loader flags must not leak into the child.
  delete env['NODE_OPTIONS'];
  const child = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), '--import', 'tsx', file, ...args],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  let killedByGuard = false;
  const guard = setTimeout(() => {
    killedByGuard = true;
    child.kill('SIGKILL');
  }, options.limitMs);
  return new Promise((resolve, reject) => {
    child.once('error', (error) => {
      clearTimeout(guard);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, killedByGuard, exitedAt: Date.now(), stdout, stderr });
    });
  });
}

/** A gate that lets at most `n` tasks run at once; the others wait their turn, in order. */
export function limitConcurrency(n: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (running >= n) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await task();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}
