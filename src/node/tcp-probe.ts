import { connect } from 'node:net';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import type { Probe, ProbeResult } from '../health/probes.js';
import type { BackendView } from '../types.js';
import { checkNumber, checkOptions, checkString } from '../validate.js';

/** Options of {@link tcpProbe}. */
export interface TcpProbeOptions {
  /**
   * The port to connect to, when it differs from the backend URL's (a separate health port).
   * @default the port of the backend URL (80 for http, 443 for https when the URL has none)
   */
  port?: number;
  /**
   * The host to connect to.
   * @default the host of the backend URL
   */
  host?: string;
}

const DEFAULT_PORTS: Readonly<Record<string, number>> = {
  'http:': 80,
  'https:': 443,
  'ws:': 80,
  'wss:': 443,
};

/**
 * A TCP connect probe: passes when a connection to the backend's host and port opens, and closes
 * it at once (HAProxy's plain `check`, Envoy's TCP health check without payload). Needs
 * `node:net`, hence this entry point.
 *
 * @example
 * ```ts
 * import { HealthChecker } from 'loadwise';
 * import { tcpProbe } from 'loadwise/node';
 * new HealthChecker(pool, { type: 'tcp', probe: tcpProbe() }).start();
 * ```
 */
export function tcpProbe(options: TcpProbeOptions = {}): Probe {
  const o = checkOptions('TcpProbeOptions', options, ['port', 'host']);
  const port =
    o.port === undefined
      ? undefined
      : checkNumber('port', o.port, { min: 1, max: 65_535, integer: true });
  const host = o.host === undefined ? undefined : checkString('host', o.host);

  const probe = (backend: BackendView, signal: AbortSignal): Promise<ProbeResult> => {
    const target = new URL(backend.url);
    // URL keeps the brackets of an IPv6 literal; net.connect wants the bare address.
    const h = host ?? target.hostname.replace(/^\[(.*)\]$/, '$1');
    const p = port ?? (target.port === '' ? DEFAULT_PORTS[target.protocol] : Number(target.port));
    if (p === undefined) {
      return Promise.reject(
        new LoadBalancerConfigError(
          'tcpProbe port',
          backend.url,
          'a backend URL with a port, or the `port` option',
        ),
      );
    }
    return new Promise<ProbeResult>((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const socket = connect({ host: h, port: p });
      const cleanup = (): void => {
        signal.removeEventListener('abort', onAbort);
        socket.removeListener('connect', onConnect);
        socket.removeListener('error', onError);
        socket.destroy();
      };
      const onAbort = (): void => {
        cleanup();
        reject(signal.reason);
      };
      const onConnect = (): void => {
        cleanup();
        resolve({ ok: true, reason: `connected to ${h}:${p}` });
      };
      const onError = (error: NodeJS.ErrnoException): void => {
        cleanup();
        resolve({
          ok: false,
          reason: `connect to ${h}:${p} failed: ${error.code ?? error.message}`,
        });
      };
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('connect', onConnect);
      socket.once('error', onError);
    });
  };
  Object.defineProperty(probe, 'probeType', { value: 'tcp' });
  return probe;
}
