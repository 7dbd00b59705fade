import { LoadBalancerConfigError } from '../errors/config-error.js';
import { normalizeBackend } from '../pool/normalize.js';
import type { BackendSpec } from '../types.js';
import { checkOptions, checkString } from '../validate.js';
import { BaseDiscovery } from './base-discovery.js';

/** Options of {@link StaticDiscovery}. */
export interface StaticDiscoveryOptions {
  /**
   * A short name for events and logs.
   * @default 'static'
   */
  name?: string;
}

/**
 * A fixed list of endpoints that changes only when told to with {@link StaticDiscovery.set}:
 * configuration files, environment variables, or a test standing in for a real registry.
 *
 * @example
 * ```ts
 * const source = new StaticDiscovery(['http://10.0.1.10:8080', 'http://10.0.1.11:8080']);
 * const binding = attachDiscovery(pool, source);
 * // later, after a configuration reload:
 * source.set(['http://10.0.1.11:8080', 'http://10.0.1.12:8080']);
 * ```
 */
export class StaticDiscovery extends BaseDiscovery {
  #endpoints: readonly BackendSpec[];

  /**
   * @param endpoints The initial endpoints (checked now, so a bad entry fails at construction).
   * @default []
   */
  constructor(endpoints: readonly BackendSpec[] = [], options: StaticDiscoveryOptions = {}) {
    const o = checkOptions('StaticDiscoveryOptions', options, ['name']);
    super(o.name === undefined ? 'static' : checkString('name', o.name));
    this.#endpoints = checkEndpoints('endpoints', endpoints);
  }

  /** The current list. */
  get endpoints(): readonly BackendSpec[] {
    return this.#endpoints;
  }

  /** Replaces the list and, once started, hands it to the listeners. */
  set(endpoints: readonly BackendSpec[]): void {
    this.#endpoints = checkEndpoints('endpoints', endpoints);
    if (this.started) this.publish(this.#endpoints);
  }

  /**
   * Reports a failed answer to the listeners, as a real registry does during an outage (useful
   * to rehearse that case in tests). The list is kept.
   */
  fail(error: unknown): void {
    if (this.started) this.publishError(error);
  }

  /** Hands the current list to the listeners again. */
  refresh(): Promise<void> {
    if (this.started) this.publish(this.#endpoints);
    return Promise.resolve();
  }

  protected override onStart(): void {
    this.publish(this.#endpoints);
  }
}

function checkEndpoints(field: string, endpoints: unknown): readonly BackendSpec[] {
  if (!Array.isArray(endpoints)) {
    throw new LoadBalancerConfigError(field, endpoints, 'an array of URLs or { url, ... } objects');
  }
  endpoints.forEach((spec: BackendSpec, i) => {
    normalizeBackend(spec, `${field}[${i}]`);
  });
  return Object.freeze([...(endpoints as BackendSpec[])]);
}
