import { NoBackendAvailableError } from './no-backend-error.js';

/**
 * Thrown by calls on a pool (or a component attached to it) after `close()`. It is a
 * {@link NoBackendAvailableError} with reason `pool-closed` and code `LB_POOL_CLOSED`.
 */
export class PoolClosedError extends NoBackendAvailableError {
  constructor(what = 'pool') {
    super('pool-closed', {}, { code: 'LB_POOL_CLOSED' });
    this.message = `The ${what} is closed: create a new one instead of reusing it after close()`;
  }
}
