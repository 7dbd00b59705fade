/**
 * Loopback servers for the runtime scenario: two CORS-enabled HTTP backends, a server that resets
 * every connection, one that never answers, a refused port, and a static server for the browser
 * page. Every server listens on 127.0.0.1 and `close()` destroys its sockets.
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Socket, type Server as TcpServer } from 'node:net';

export interface Running {
  readonly url: string;
  close(): Promise<void>;
}

function listen(server: Server | TcpServer): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') reject(new Error('no port'));
      else resolve(address.port);
    });
  });
}

function tracked(server: Server | TcpServer): () => Promise<void> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // A reset or a vanished peer must not crash the runner.
    socket.on('error', () => undefined);
  });
  return () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
}

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-headers': '*',
  'access-control-allow-methods': 'GET, HEAD, POST, PUT, DELETE, OPTIONS',
};

/** Answers `/health` with 200 `ok`, any other path with `{ backend, path }`, CORS for all. */
export async function startBackend(name: string): Promise<Running> {
  const server = createHttpServer((req, res) => {
    if (req.method === 'OPTIONS') {
      res.writeHead(204, CORS).end();
      return;
    }
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    req.resume();
    if (path === '/health') {
      res.writeHead(200, { ...CORS, 'content-type': 'text/plain' }).end('ok');
      return;
    }
    res
      .writeHead(200, { ...CORS, 'content-type': 'application/json' })
      .end(JSON.stringify({ backend: name, path }));
  });
  const close = tracked(server);
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, close };
}

/** Reads the start of a request, then resets the connection (TCP RST) without answering. */
export async function startResetServer(): Promise<Running> {
  const server = createTcpServer((socket) => {
    socket.once('data', () => socket.resetAndDestroy());
  });
  const close = tracked(server);
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, close };
}

/** Accepts connections and never answers. */
export async function startHangServer(): Promise<Running> {
  const server = createTcpServer((socket) => {
    socket.resume();
  });
  const close = tracked(server);
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, close };
}

/** A loopback port nothing listens on: bound once to learn a free port, then closed. */
export async function refusedUrl(): Promise<string> {
  const server = createTcpServer();
  const port = await listen(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/** Serves fixed files (path → [content type, body]); 404 for anything else. */
export async function startStaticServer(
  files: ReadonlyMap<string, readonly [string, string | Uint8Array]>,
): Promise<Running> {
  const server = createHttpServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const file = files.get(path);
    if (file === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': file[0], 'cache-control': 'no-store' }).end(file[1]);
  });
  const close = tracked(server);
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, close };
}
