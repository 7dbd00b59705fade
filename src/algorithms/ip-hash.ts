import type { PickContext } from '../types.js';
import {
  badKeyError,
  HashRingAlgorithm,
  type HashRingAlgorithmOptions,
} from './consistent-hash.js';

/** Options of {@link IpHash}: those of the consistent hash ring; the key is the client address. */
export type IpHashOptions = HashRingAlgorithmOptions;

/**
 * Client-IP affinity: the client's address (`ctx.clientAddress`) is the key of a consistent hash
 * ring, so a client keeps reaching the same backend (session caches, rate limiters) and a
 * membership change moves few clients. Unlike nginx's `ip_hash`, which hashes a list modulo its
 * length, adding a backend moves only about 1/(n + 1) of the clients.
 *
 * An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, as a dual-stack Node socket reports it) hashes
 * as its IPv4 form, so a client keeps its backend whichever way it connected. When the backend is
 * down, the client goes to the next one on the ring and returns when it recovers. Without a
 * client address, a random eligible backend is picked (or the pick throws, with
 * `missingKey: 'throw'`).
 *
 * @example
 * ```ts
 * const pool = new BackendPool({ backends, algorithm: new IpHash() });
 * const lease = pool.acquire({ clientAddress: req.socket.remoteAddress });
 * ```
 */
export class IpHash extends HashRingAlgorithm {
  readonly name: string = 'ip-hash';
  protected readonly keyField: string = 'ctx.clientAddress';

  constructor(options: IpHashOptions = {}) {
    super('IpHash', options, []);
  }

  protected keyOf(ctx: PickContext): string | undefined {
    const address = ctx.clientAddress;
    if (typeof address === 'string' || address === undefined) return address;
    throw badKeyError(this.name, this.keyField, address);
  }

  protected override keyStart(address: string): number {
    // '::ffff:a.b.c.d' (any case) → hash 'a.b.c.d' without slicing the string.
    if (
      address.length > 7 &&
      address.charCodeAt(0) === 58 &&
      address.charCodeAt(1) === 58 &&
      (address.charCodeAt(2) | 0x20) === 102 &&
      (address.charCodeAt(3) | 0x20) === 102 &&
      (address.charCodeAt(4) | 0x20) === 102 &&
      (address.charCodeAt(5) | 0x20) === 102 &&
      address.charCodeAt(6) === 58 &&
      address.indexOf('.', 7) > 0
    ) {
      return 7;
    }
    return 0;
  }
}
