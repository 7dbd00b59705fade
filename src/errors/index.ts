export { LoadBalancerConfigError } from './config-error.js';
export { LoadBalancerError, type LoadBalancerErrorCode } from './load-balancer-error.js';
export { NoBackendAvailableError, type NoBackendReason } from './no-backend-error.js';
export { PoolClosedError } from './pool-closed-error.js';
export { UnknownBackendError } from './unknown-backend-error.js';
