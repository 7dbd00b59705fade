/**
 * The Fetch standard's port blocking (https://fetch.spec.whatwg.org/#port-blocking): a request
 * to an http(s) URL on a "bad port" is a network error in every conforming fetch (undici says
 * `bad port`, Deno `Requests to port N are blocked`, browsers fail it). The list is the
 * standard's table as of whatwg/fetch 4c3750d (4190 and 6679 added), the same as undici's
 * `lib/web/fetch/constants.js`.
 * @internal
 */
import { BadPortError } from '../errors/bad-port-error.js';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import type { BackendView } from '../types.js';

const BAD_PORTS: ReadonlySet<number> = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102,
  103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137, 139, 143, 161, 179, 389, 427, 465,
  512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993,
  995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668,
  6669, 6679, 6697, 10080,
]);

/** The blocked port of an http(s) URL, or undefined when fetch may use it. */
export function badPort(url: string): number | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return undefined;
  // An empty port is the scheme's default (80 or 443), which is never blocked.
  const port = parsed.port === '' ? undefined : Number(parsed.port);
  return port !== undefined && BAD_PORTS.has(port) ? port : undefined;
}

/** The blocked port per backend object (0: none), so an attempt parses a backend's URL once. */
const checked = new WeakMap<BackendView, number>();

/** The error for a backend that fetch cannot reach because of its port, else undefined. */
export function badPortError(backend: BackendView): BadPortError | undefined {
  let port = checked.get(backend);
  if (port === undefined) {
    port = badPort(backend.url) ?? 0;
    checked.set(backend, port);
  }
  return port === 0 ? undefined : new BadPortError(backend.id, backend.url, port);
}

/**
 * Throws for the first backend of `backends` that a fetch can never reach: a scheme other than
 * `http:` or `https:` (a pool of `tcp://` or `redis://` backends handed to a balanced fetch) as a
 * {@link LoadBalancerConfigError}, a bad port as a {@link BadPortError}.
 */
export function assertFetchable(backends: readonly BackendView[]): void {
  for (const backend of backends) {
    const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(backend.url)?.[0]?.toLowerCase();
    if (scheme !== 'http:' && scheme !== 'https:') {
      throw new LoadBalancerConfigError(
        `backend ${JSON.stringify(backend.id)} url`,
        backend.url,
        'an http: or https: URL, since a balanced fetch speaks HTTP',
        {
          hint: 'For other protocols take a lease with pool.acquire(), or use connect() from loadwise/node.',
        },
      );
    }
    const error = badPortError(backend);
    if (error !== undefined) throw error;
  }
}
