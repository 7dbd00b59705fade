/**
 * Discovery from etcd (`etcd3` is an optional peer dependency).
 * @packageDocumentation
 */
export {
  decodeEtcdEndpoint,
  type EtcdClientLike,
  type EtcdConnectOptions,
  type EtcdDecoder,
  EtcdDiscovery,
  type EtcdDiscoveryEvents,
  type EtcdDiscoveryOptions,
  type EtcdKeyValueLike,
  type EtcdRangeBuilderLike,
  type EtcdRangeResponseLike,
  type EtcdResyncReason,
  type EtcdWatchBuilderLike,
  type EtcdWatcherLike,
  type EtcdWatchResponseLike,
} from './etcd-discovery.js';
