/**
 * The parts of loadwise that need Node.js: TCP probes, DNS discovery, diagnostics channels and
 * Layer 4 connections.
 * @packageDocumentation
 */

export {
  type BalancedSocket,
  type ConnectOptions,
  type ConnectTarget,
  connect,
} from './connect.js';
export {
  DIAGNOSTICS_CHANNELS,
  type DiagnosticsHandle,
  enableDiagnostics,
  type FetchAttemptMessage,
  type FetchFailureMessage,
  type FetchHedgeMessage,
  type FetchResponseMessage,
  type FetchRetryMessage,
  type PoolDrainedMessage,
  type PoolMembershipMessage,
  type PoolPanicMessage,
  type PoolPayload,
  type PoolPickMessage,
  type PoolReleaseMessage,
  type PoolSkewMessage,
  type PoolStateMessage,
} from './diagnostics.js';
export {
  type DnsCommonOptions,
  DnsDiscovery,
  type DnsDiscoveryOptions,
  type DnsFamily,
  type DnsResolverLike,
  DnsSrvDiscovery,
  type DnsSrvDiscoveryOptions,
} from './dns-discovery.js';
export { type TcpProbeOptions, tcpProbe } from './tcp-probe.js';
