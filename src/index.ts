/**
 * loadwise: client-side load balancing. Backend pools with health states, draining and panic
 * mode; balancing algorithms; consistent hashing; health checks; sticky sessions; and a
 * balanced `fetch`.
 * @packageDocumentation
 */

export { LeastConnections } from './algorithms/least-connections.js';
export { PeakEwma, type PeakEwmaOptions } from './algorithms/peak-ewma.js';
export { PowerOfTwoChoices } from './algorithms/power-of-two-choices.js';
export { RandomPick } from './algorithms/random-pick.js';
export { RoundRobin, type RoundRobinOptions } from './algorithms/round-robin.js';
export { WeightedRoundRobin } from './algorithms/weighted-round-robin.js';
export { type Clock, systemClock, type TimerHandle } from './clock.js';
export * from './errors/index.js';
export {
  BackendPool,
  type BackendPoolOptions,
  type DrainOptions,
  type DrainResult,
  type ProbeReport,
  type RemoveOptions,
  type SkewOptions,
} from './pool/backend-pool.js';
export { defaultRandom, type Random } from './random.js';
export type * from './types.js';
