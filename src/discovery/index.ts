/**
 * Service discovery: sources of endpoints and the binding that applies their answers to a pool.
 * Runtime-neutral; the DNS sources live in `loadwise/node`.
 * @packageDocumentation
 */
export {
  type AddressCategory,
  AddressPolicy,
  type AddressPolicyOptions,
} from './address-policy.js';
export { BaseDiscovery } from './base-discovery.js';
export {
  AWAITING_HEALTH_CHECK,
  attachDiscovery,
  DiscoveryBinding,
  type DiscoveryBindingOptions,
  type DiscoveryEvents,
} from './binding.js';
export {
  type PollFunction,
  PollingDiscovery,
  type PollingDiscoveryOptions,
  type PollResult,
} from './polling-discovery.js';
export { StaticDiscovery, type StaticDiscoveryOptions } from './static-discovery.js';
export type { Discovery, DiscoveryAnswer, DiscoveryListener } from './types.js';
