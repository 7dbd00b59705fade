/**
 * Helpers for testing code that uses loadwise: a clock that moves only when told to, and a
 * deterministic random source.
 * @packageDocumentation
 */
export { ManualClock } from './manual-clock.js';
export { seededRandom } from './seeded-random.js';
