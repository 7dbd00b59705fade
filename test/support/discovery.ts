/**
 * Helpers shared by the discovery tests (unit and DNS integration).
 */
import type { DiscoveryBinding, DiscoveryEvents } from '../../src/index.js';

/** Every event a `DiscoveryBinding` emits. */
export const BINDING_EVENTS = [
  'applied',
  'removed',
  'refresh-failed',
  'empty-answer',
  'held-back',
  'invalid-endpoint',
  'apply-failed',
] as const satisfies readonly (keyof DiscoveryEvents)[];

/** Calls `record` with the name and payload of every event `binding` emits. */
export function onEveryEvent(
  binding: DiscoveryBinding,
  record: (name: (typeof BINDING_EVENTS)[number], payload: unknown) => void,
): void {
  for (const name of BINDING_EVENTS) {
    binding.on(name, (payload: unknown) => record(name, payload));
  }
}
