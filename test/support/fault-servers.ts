/**
 * HTTP servers on 127.0.0.1 that misbehave on demand, for the reliability suite: a refused port,
 * a reset before or after the response headers, a hang, slow headers, a truncated body, a 5xx
 * storm, and a server killed and restarted on the same port. Built on `startServer` from
 * servers.ts, whose teardown destroys every socket; the timers of slow answers are cleared on
 * close too.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { startServer, type TestServer, unusedPort } from './servers.js';

/**
 * How a fault server answers:
 * - `ok`: 200 with its name as the body;
 * - `reset-before-headers`: a TCP RST as soon as the request arrives;
 * - `reset-after-headers`: 200 headers with a `Content-Length`, part of the body, then a RST;
 * - `hang`: reads the request and never answers;
 * - `slow-headers`: answers 200 after `delayMs`;
 * - `truncated-body`: 200 with a `Content-Length` larger than what is sent, then the socket is
 *   closed (a FIN, not a reset);
 * - `status`: answers `status` (503 unless told otherwise), a 5xx storm.
 */
export type FaultMode =
  | 'ok'
  | 'reset-before-headers'
  | 'reset-after-headers'
  | 'hang'
  | 'slow-headers'
  | 'truncated-body'
  | 'status';

export interface FaultOptions {
  /** Delay of `slow-headers`, in ms. @default 1000 */
  delayMs?: number;
  /** Status of `status`. @default 503 */
  status?: number;
}

/**
 * The health-probe path: answered 200 in every mode but `status` (see `setMode`'s `healthy`), so
 * active checks see what a real health endpoint would while the application path misbehaves.
 */
export const HEALTH_PATH = '/health';

export interface FaultServer {
  /** The name the server answers with (`ok` mode body). */
  readonly name: string;
  /** Base URL, stable across `kill()` and `restart()`. */
  readonly url: string;
  readonly port: number;
  /** Requests received (all modes, health probes excluded), across restarts. */
  readonly hits: number;
  /** Health probes received, across restarts. */
  readonly probes: number;
  /** The current mode. */
  readonly mode: FaultMode;
  /** Whether the server listens now. */
  readonly running: boolean;
  /**
   * Changes how requests are answered. `healthy` says how health probes are answered (`true`:
   * 200; `false`: 503); by default probes pass unless the mode is `status`.
   */
  setMode(mode: FaultMode, options?: FaultOptions & { healthy?: boolean }): void;
  /** Stops listening and destroys every connection at once (a crash): calls now get refused. */
  kill(): Promise<void>;
  /** Listens again on the same port (after `kill`). */
  restart(): Promise<void>;
  /** Stops for good. Idempotent. */
  close(): Promise<void>;
}

/** Starts a fault server on a free port of 127.0.0.1, in `ok` mode. */
export async function startFaultServer(name: string): Promise<FaultServer> {
  let mode: FaultMode = 'ok';
  let delayMs = 1000;
  let status = 503;
  let healthy: boolean | undefined;
  let hits = 0;
  let probes = 0;
  let closed = false;
  const timers = new Set<ReturnType<typeof setTimeout>>();

  const later = (fn: () => void, ms: number): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.url === HEALTH_PATH) {
      probes++;
      const ok = healthy ?? mode !== 'status';
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ok ? 'healthy' : 'unhealthy');
      return;
    }
    hits++;
    const socket = req.socket as Socket;
    switch (mode) {
      case 'ok':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(name);
        return;
      case 'reset-before-headers':
        socket.resetAndDestroy();
        return;
      case 'reset-after-headers':
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
        res.write('partial');
        // Let the headers and the first bytes leave, and be read, before the reset (a RST that
        // arrives first discards them, and the call is retried instead).
        later(() => socket.resetAndDestroy(), 50);
        return;
      case 'hang':
        return;
      case 'slow-headers':
        later(() => {
          if (res.destroyed) return;
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end(name);
        }, delayMs);
        return;
      case 'truncated-body':
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
        res.write('0123456789');
        later(() => socket.destroy(), 5);
        return;
      case 'status':
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end(`${name} ${status}`);
        return;
    }
  };

  let server: TestServer | undefined = await startServer(handler);
  const port = server.port;
  const url = server.url;

  const kill = async (): Promise<void> => {
    const s = server;
    server = undefined;
    for (const t of timers) clearTimeout(t);
    timers.clear();
    await s?.close();
  };

  return {
    name,
    url,
    port,
    get hits() {
      return hits;
    },
    get probes() {
      return probes;
    },
    get mode() {
      return mode;
    },
    get running() {
      return server !== undefined;
    },
    setMode(next, options = {}) {
      mode = next;
      delayMs = options.delayMs ?? 1000;
      status = options.status ?? 503;
      healthy = options.healthy;
    },
    kill,
    async restart() {
      if (closed) throw new Error(`fault server ${name} was closed for good`);
      await kill();
      server = await listenAgain(handler, port);
    },
    async close() {
      closed = true;
      await kill();
    },
  };
}

/**
 * Listens on `port` again. The port was ours a moment ago; Node sets SO_REUSEADDR, so a socket
 * left in TIME_WAIT does not block it, but retry briefly in case the kernel lags behind.
 */
async function listenAgain(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  port: number,
): Promise<TestServer> {
  let lastError: unknown;
  for (let i = 0; i < 20; i++) {
    try {
      return await startServer(handler, port);
    } catch (error) {
      lastError = error;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  throw lastError;
}

/** Starts `n` fault servers named `s0`, `s1`, ... */
export function startFaultServers(n: number): Promise<FaultServer[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => startFaultServer(`s${i}`)));
}

/** A base URL on 127.0.0.1 where nothing listens: connections are refused. */
export async function refusedUrl(): Promise<string> {
  return `http://127.0.0.1:${await unusedPort()}`;
}
