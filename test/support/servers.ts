/**
 * Real HTTP servers on 127.0.0.1 for integration tests, with teardown that closes every socket.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface TestServer {
  /** Base URL, e.g. `http://127.0.0.1:43123`. */
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  /** Requests received so far. */
  readonly hits: number;
  /** Replaces the request handler. */
  setHandler(handler: Handler): void;
  /** Stops listening and destroys every open connection. Idempotent. */
  close(): Promise<void>;
}

/** Starts a server on 127.0.0.1 (a free port unless `port` is given). */
export async function startServer(handler: Handler, port = 0): Promise<TestServer> {
  let current = handler;
  let hits = 0;
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    hits++;
    Promise.resolve(current(req, res)).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(error));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    server,
    get hits() {
      return hits;
    },
    setHandler(h) {
      current = h;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** A handler answering `status` with `body`. */
export function respond(status = 200, body = 'ok', headers: Record<string, string> = {}): Handler {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'text/plain', ...headers });
    res.end(body);
  };
}

/** Starts `n` servers, each answering 200 with its own index as the body. */
export async function startServers(n: number): Promise<TestServer[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => startServer(respond(200, String(i)))));
}

/** Closes every server given (ignores those already closed). */
export async function closeAll(servers: readonly TestServer[]): Promise<void> {
  await Promise.all(servers.map((s) => s.close()));
}

/** A port that nothing listens on (bound, then released). */
export async function unusedPort(): Promise<number> {
  const s = await startServer(respond());
  const { port } = s;
  await s.close();
  return port;
}
