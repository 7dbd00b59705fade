/**
 * loadwise: client-side load balancing. Backend pools with health states, draining and panic
 * mode; balancing algorithms; consistent hashing; health checks; sticky sessions; and a
 * balanced `fetch`.
 * @packageDocumentation
 */

export {
  ConsistentHash,
  type ConsistentHashOptions,
  type HashRingAlgorithm,
  type HashRingAlgorithmOptions,
  type MissingKeyPolicy,
} from './algorithms/consistent-hash.js';
export {
  DeterministicSubset,
  type DeterministicSubsetOptions,
} from './algorithms/deterministic-subset.js';
export { IpHash, type IpHashOptions } from './algorithms/ip-hash.js';
export { LeastConnections } from './algorithms/least-connections.js';
export { Maglev, type MaglevOptions } from './algorithms/maglev.js';
export { PeakEwma, type PeakEwmaCost, type PeakEwmaOptions } from './algorithms/peak-ewma.js';
export { PowerOfTwoChoices } from './algorithms/power-of-two-choices.js';
export { RandomPick } from './algorithms/random-pick.js';
export { RoundRobin, type RoundRobinOptions } from './algorithms/round-robin.js';
export { WeightedRoundRobin } from './algorithms/weighted-round-robin.js';
export type { HedgeExplanation, HedgeOptions } from './call/hedging.js';
export { RetryBudget, type RetryBudgetOptions } from './call/retry-budget.js';
export { type Clock, systemClock, type TimerHandle } from './clock.js';
export * from './discovery/index.js';
export * from './errors/index.js';
export { createBalancedFetch } from './fetch/balanced-fetch.js';
export type {
  AfterResponseInfo,
  BalancedFetch,
  BalancedFetchEvents,
  BalancedFetchOptions,
  ContextInfo,
  FetchFunction,
  FetchResolution,
  FetchResponse,
  FetchTarget,
} from './fetch/types.js';
export type { AmbiguousPathMode } from './fetch/url.js';
export {
  deterministicSubset,
  type FleetPosition,
  fleetOffset,
  type SubsetPlacement,
  type SubsetSpanOptions,
  subsetCoverage,
  subsetRing,
  subsetSpan,
  vanDerCorput,
} from './fleet/subset.js';
export {
  ConsistentHashRing,
  type ConsistentHashRingOptions,
  type RingBackend,
  type RingHash,
  type RingHashFunction,
  type RingLocation,
} from './hashing/consistent-hash-ring.js';
export { jumpHash } from './hashing/jump-hash.js';
export {
  type MaglevBackend,
  MaglevTable,
  type MaglevTableOptions,
} from './hashing/maglev-table.js';
export { md5 } from './hashing/md5.js';
export { murmur3 } from './hashing/murmur3.js';
export { xxhash64 } from './hashing/xxhash64.js';
export {
  type BackendHealth,
  HealthChecker,
  type HealthCheckerEvents,
  type HealthCheckerOptions,
  type HealthCheckRole,
  type HealthCheckType,
  type HealthProbeResult,
} from './health/health-checker.js';
export {
  type EjectionCause,
  type FailurePercentageOptions,
  OutlierDetector,
  type OutlierDetectorEvents,
  type OutlierDetectorOptions,
  type OutlierStatus,
  type RetryAfterOptions,
  type SuccessRateOptions,
} from './health/outlier-detector.js';
export {
  type HttpProbeOptions,
  httpProbe,
  type Probe,
  type ProbeFetch,
  type ProbeRequestInit,
  type ProbeResult,
} from './health/probes.js';
export { parseRetryAfter } from './health/retry-after.js';
export * from './observability/index.js';
export {
  BackendPool,
  type BackendPoolOptions,
  type DrainOptions,
  type DrainResult,
  type EjectOptions,
  type ProbeReport,
  type RemoveOptions,
  type SkewOptions,
} from './pool/backend-pool.js';
export {
  type BackendSnapshot,
  POOL_SNAPSHOT_FORMAT,
  POOL_SNAPSHOT_VERSION,
  type PoolSnapshot,
} from './pool/snapshot.js';
export type { ZoneAwareOptions } from './pool/zone-routing.js';
export { defaultRandom, type Random } from './random.js';
export type { HeaderCondition, RouteMatch } from './routing/route-matcher.js';
export {
  type Route,
  type RouteAction,
  type RouteHeaderChanges,
  type RouteRewrite,
  Router,
  type RouterOptions,
} from './routing/router.js';
export {
  type CookieAttributes,
  type CookieSecret,
  type CookieSigner,
  createCookieSigner,
  getCookie,
  parseCookieHeader,
  type SameSite,
  serializeSetCookie,
} from './session/cookie.js';
export { MemorySessionStore, type MemorySessionStoreOptions } from './session/memory-store.js';
export {
  type CookieRejection,
  type SessionAcquireInput,
  type SessionAcquireResult,
  type SessionCookieOptions,
  type SessionEvents,
  type SessionFetchAttempt,
  type SessionFetchHooks,
  type SessionFetchOptions,
  SessionPersistenceManager,
  type SessionPersistenceOptions,
  type SessionStatus,
} from './session/session-persistence-manager.js';
export type { Awaitable, SessionRecord, SessionStore } from './session/store.js';
export * from './simulator/index.js';
export type * from './types.js';
