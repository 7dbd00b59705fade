import { isIP, connect as netConnect, type Socket } from 'node:net';
import {
  type TLSSocket,
  type ConnectionOptions as TlsConnectionOptions,
  connect as tlsConnect,
} from 'node:tls';
import { localCode } from '../call/error-codes.js';
import type { Clock } from '../clock.js';
import { AllAttemptsFailedError, type AttemptRecord } from '../errors/all-attempts-failed-error.js';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { LocalFailureError } from '../errors/local-failure-error.js';
import { NoBackendAvailableError } from '../errors/no-backend-error.js';
import { TimeoutError } from '../errors/timeout-error.js';
import type { BackendView, FailureKind, Lease, PickContext } from '../types.js';
import { checkOptions, isPlainObject, optDuration, optNumber } from '../validate.js';

/** The pool API `connect()` needs (a `BackendPool` fits). */
export interface ConnectTarget {
  acquire(ctx?: PickContext): Lease;
  readonly clock: Clock;
  backends(): readonly BackendView[];
}

/** Options of {@link connect}. */
export interface ConnectOptions {
  /**
   * Give up on one backend when the TCP (and TLS) handshake takes longer than this, and try
   * another.
   * @default 5000
   */
  connectTimeoutMs?: number;
  /**
   * Backends to try before giving up with `AllAttemptsFailedError`. Each attempt avoids the
   * backends already tried while others are routable.
   * @default 3 (at most the number of backends)
   */
  maxAttempts?: number;
  /**
   * Open a TLS connection: `true`, or `node:tls` connection options (`servername`, `ca`, ...).
   * SNI (`servername`) defaults to the backend's host name; for a backend addressed by IP no SNI
   * is sent (RFC 6066 §3 allows host names only) and the certificate is checked against the IP.
   * @default false
   */
  tls?: boolean | TlsConnectionOptions;
  /** Pick context (affinity key, client address, sticky pin) for the pool. */
  context?: PickContext;
  /** Aborts the connection attempts; an aborted connect is not retried. */
  signal?: AbortSignal;
  /**
   * Turn on TCP keep-alive probes with this initial delay in ms (0 leaves them off).
   * @default 0
   */
  keepAliveMs?: number;
}

/** A socket from {@link connect}, with the backend it reached. */
export type BalancedSocket = (Socket | TLSSocket) & {
  /** The backend this socket is connected to. */
  readonly backend: BackendView;
};

const CONNECT_KEYS = [
  'connectTimeoutMs',
  'maxAttempts',
  'tls',
  'context',
  'signal',
  'keepAliveMs',
] as const;

/**
 * Opens a TCP (or TLS) connection to a backend picked by the pool. The connection holds its
 * lease until the socket closes, so least-connections and power-of-two-choices count open
 * connections: the right model for long-lived connections (WebSockets, databases, message
 * queues), where round robin piles connections onto the first backends. A refused or timed-out
 * connect goes to another backend; when every attempt fails the promise rejects with
 * {@link AllAttemptsFailedError} naming each backend tried.
 *
 * Outcomes feed health and outlier detection: a refused or timed-out connect releases its lease
 * as a `connect`/`timeout` failure, a connection that ends with an error (reset) as `reset`,
 * and a clean close as a success. Backends are given with URLs like `tcp://10.0.0.5:5432`
 * (any scheme with an explicit port works).
 *
 * @example
 * ```ts
 * import { BackendPool, LeastConnections } from 'loadwise';
 * import { connect } from 'loadwise/node';
 *
 * const pool = new BackendPool({ backends: ['tcp://10.0.0.5:6379', 'tcp://10.0.0.6:6379'], algorithm: new LeastConnections() });
 * const socket = await connect(pool, { connectTimeoutMs: 1000 });
 * socket.write('PING\r\n');
 * ```
 */
export async function connect(
  target: ConnectTarget,
  options: ConnectOptions = {},
): Promise<BalancedSocket> {
  if (target === null || typeof target !== 'object' || typeof target.acquire !== 'function') {
    throw new LoadBalancerConfigError('connect(target)', target, 'a BackendPool');
  }
  const o = checkOptions('ConnectOptions', options, CONNECT_KEYS);
  const connectTimeoutMs = optDuration('connectTimeoutMs', o.connectTimeoutMs, 5000, { min: 1 });
  const maxAttempts = optNumber('maxAttempts', o.maxAttempts, 3, { min: 1, integer: true });
  const keepAliveMs = optDuration('keepAliveMs', o.keepAliveMs, 0, { min: 0 });
  if (o.tls !== undefined && typeof o.tls !== 'boolean' && !isPlainObject(o.tls)) {
    throw new LoadBalancerConfigError('tls', o.tls, 'true, false or node:tls connection options');
  }
  if (o.context !== undefined && !isPlainObject(o.context)) {
    throw new LoadBalancerConfigError('context', o.context, 'a pick context object');
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw new LoadBalancerConfigError('signal', o.signal, 'an AbortSignal');
  }
  const attempts: AttemptRecord[] = [];
  const tried = new Set<string>();
  const limit = Math.max(1, Math.min(maxAttempts, target.backends().length));
  let lastError: unknown;
  for (let attempt = 1; attempt <= limit; attempt++) {
    o.signal?.throwIfAborted();
    let lease: Lease;
    try {
      lease = target.acquire({ ...o.context, exclude: tried });
    } catch (error) {
      if (attempts.length === 0 || !(error instanceof NoBackendAvailableError)) throw error;
      attempts.push({ backend: '(none)', outcome: 'no-backend', error });
      lastError = error;
      break;
    }
    tried.add(lease.backend.id);
    try {
      const socket = await openSocket(
        target.clock,
        lease,
        connectTimeoutMs,
        o.tls ?? false,
        o.signal,
      );
      if (keepAliveMs > 0) socket.setKeepAlive(true, keepAliveMs);
      holdLease(socket, lease, target.clock.now() - lease.acquiredAt);
      return Object.assign(socket, { backend: lease.backend }) as BalancedSocket;
    } catch (error) {
      const code = localCode(error);
      const failure: FailureKind = o.signal?.aborted
        ? 'aborted'
        : error instanceof TimeoutError
          ? 'timeout'
          : error instanceof LoadBalancerConfigError || code !== undefined
            ? 'local'
            : 'connect';
      lease.release({ ok: false, failure, error });
      if (failure === 'aborted') throw o.signal?.reason ?? error;
      attempts.push({ backend: lease.backend.id, outcome: failure, error });
      // A failure of this process (no port to connect to, no file descriptor left) is the
      // caller's: the backend is not blamed and no other backend is tried.
      if (error instanceof LoadBalancerConfigError) throw error;
      if (failure === 'local') {
        throw new LocalFailureError(lease.backend.id, code ?? 'local failure', attempts, {
          cause: error,
          localCode: code,
        });
      }
      lastError = error;
    }
  }
  throw new AllAttemptsFailedError(
    attempts,
    `${attempts.length} of at most ${limit} connection attempts were made`,
    {
      cause: lastError,
    },
  );
}

/**
 * Keeps the lease until the socket closes, then releases it with the connection's outcome. The
 * latency reported is the handshake time, not the connection's lifetime, so latency-aware
 * algorithms compare backends on how fast they accept connections.
 */
function holdLease(socket: Socket, lease: Lease, connectMs: number): void {
  let error: unknown;
  socket.on('error', (e) => {
    error = e;
  });
  socket.once('close', (hadError) => {
    lease.release(
      hadError || error !== undefined
        ? { ok: false, failure: 'reset', error, latencyMs: connectMs }
        : { ok: true, latencyMs: connectMs },
    );
  });
}

/** Ports implied by a scheme (WHATWG URL "special schemes"). */
const DEFAULT_PORTS: Readonly<Record<string, number>> = {
  'http:': 80,
  'https:': 443,
  'ws:': 80,
  'wss:': 443,
};

/** The `servername` to send: the caller's, else the backend's host name; none for an IP. */
function sniFor(tls: true | TlsConnectionOptions, host: string): { servername?: string } {
  if (tls !== true && tls.servername) return { servername: tls.servername };
  return isIP(host) === 0 ? { servername: host } : {};
}

function openSocket(
  clock: Clock,
  lease: Lease,
  timeoutMs: number,
  tls: boolean | TlsConnectionOptions,
  signal: AbortSignal | undefined,
): Promise<Socket> {
  const url = new URL(lease.backend.url);
  // A URL parser leaves the port empty when it is the scheme's default.
  const port = url.port === '' ? DEFAULT_PORTS[url.protocol] : Number(url.port);
  if (port === undefined || !Number.isInteger(port) || port <= 0) {
    return Promise.reject(
      new LoadBalancerConfigError(
        `backend ${lease.backend.id} url`,
        lease.backend.url,
        'a URL with a port for connect() (an explicit one, or http:/https: for 80/443)',
      ),
    );
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return new Promise<Socket>((resolve, reject) => {
    let socket: Socket;
    try {
      socket = tls
        ? tlsConnect({
            ...(tls === true ? {} : tls),
            host,
            port,
            // SNI carries host names only: RFC 6066 §3 forbids IP literals in it (Node warns,
            // DEP0123). For an IP backend the certificate is checked against the IP instead.
            ...sniFor(tls, host),
          })
        : netConnect({ host, port });
    } catch (cause) {
      // node:tls refuses options it cannot use (minVersion 'TLSv9', a CA that is a number) by
      // throwing here, before any byte is sent: the caller's mistake, not the backend's.
      reject(
        new LoadBalancerConfigError('tls', tls, 'options node:tls.connect accepts', { cause }),
      );
      return;
    }
    const readyEvent = tls ? 'secureConnect' : 'connect';
    let settled = false;
    const finish = (error?: unknown): void => {
      if (settled) return;
      settled = true;
      clock.clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.removeListener('error', finish);
      socket.removeListener(readyEvent, onReady);
      if (error === undefined) {
        resolve(socket);
      } else {
        socket.destroy();
        reject(error);
      }
    };
    const onReady = (): void => finish();
    const onAbort = (): void => finish(signal?.reason);
    const timer = clock.setTimeout(
      () => finish(new TimeoutError('attempt', timeoutMs, { backend: lease.backend.id })),
      timeoutMs,
    );
    timer.unref?.();
    socket.once('error', finish);
    socket.once(readyEvent, onReady);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
