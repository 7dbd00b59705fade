import { LoadBalancerError } from './load-balancer-error.js';

/** Why a discovery source gave no answer. */
export type DiscoveryErrorReason = 'timeout' | 'closed';

/**
 * A discovery source gave no answer: its poll timed out (`LB_DISCOVERY_TIMEOUT`) or the source
 * was closed while a poll ran (`LB_DISCOVERY_CLOSED`). It reaches users as the `error` of a
 * `refresh-failed` event, never as a rejection of their calls: the pool keeps its last good set.
 */
export class DiscoveryError extends LoadBalancerError {
  /** Why no answer came. */
  readonly reason: DiscoveryErrorReason;
  /** The source's name. */
  readonly source: string;

  constructor(reason: DiscoveryErrorReason, source: string, timeoutMs?: number) {
    super(
      reason === 'timeout' ? 'LB_DISCOVERY_TIMEOUT' : 'LB_DISCOVERY_CLOSED',
      reason === 'timeout'
        ? `Discovery source ${source} gave no answer within ${timeoutMs} ms; check the registry, or raise timeoutMs`
        : `Discovery source ${source} was closed while a refresh was running`,
    );
    this.reason = reason;
    this.source = source;
  }
}
