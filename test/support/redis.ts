/**
 * A real `redis-server` for integration tests: on a free port of 127.0.0.1, without persistence,
 * stopped (or killed, and restarted on the same port) by the test.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { unusedPort } from './servers.js';
import { requireCommand } from './services.js';

export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** Whether the process runs now. */
  readonly running: boolean;
  /** Kills the process at once (SIGKILL, as a crash) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts the server again on the same port (after `kill`). */
  restart(): Promise<void>;
  /** Stops the server for good. Idempotent. */
  stop(): Promise<void>;
}

/** Whether `redis-server` is there; throws in CI when it is missing (see services.ts). */
export function hasRedis(): boolean {
  return requireCommand('redis-server');
}

/** Starts `redis-server` on a free port and waits until it answers PING. */
export async function startRedis(): Promise<RedisServer> {
  const port = await unusedPort();
  let proc: ChildProcess | undefined;
  let stopped = false;

  const launch = async (): Promise<void> => {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'no',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    proc = child;
    const deadline = Date.now() + 5000;
    while (!(await ping(port))) {
      if (child.exitCode !== null) {
        throw new Error(`redis-server exited with ${child.exitCode}: ${stderr}`);
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`redis-server did not answer PING on port ${port} within 5 s: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  const kill = async (): Promise<void> => {
    const child = proc;
    proc = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  };

  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return proc !== undefined && proc.exitCode === null && proc.signalCode === null;
    },
    kill,
    async restart() {
      if (stopped) throw new Error('redis-server was stopped for good');
      await kill();
      await launch();
    },
    async stop() {
      stopped = true;
      await kill();
    },
  };
}

/** Whether something on `port` answers a Redis PING with +PONG (within 500 ms). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let answer = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      answer += d.toString();
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
  });
}
