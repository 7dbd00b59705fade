/**
 * A real `redis-server` for integration tests: on a free port of 127.0.0.1, without persistence,
 * stopped (or killed, and restarted on the same port) by the test.
 */
import { connect } from 'node:net';
import { unusedPort } from './servers.js';
import { type ServiceProcess, startServiceProcess } from './service-process.js';
import { requireCommand } from './services.js';

export interface RedisServer extends ServiceProcess {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
}

/** Whether `redis-server` is there; throws in CI when it is missing (see services.ts). */
export function hasRedis(): boolean {
  return requireCommand('redis-server');
}

/** Starts `redis-server` on a free port and waits until it answers PING. */
export async function startRedis(): Promise<RedisServer> {
  const port = await unusedPort();
  const server = await startServiceProcess({
    command: 'redis-server',
    args: [
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
    ready: () => ping(port),
    readyWhat: `PING on port ${port}`,
    readyWithinMs: 5000,
    pollMs: 20,
  });
  return Object.assign(server, { port, url: `redis://127.0.0.1:${port}` });
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
