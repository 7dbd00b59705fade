/**
 * The Redis session store (`ioredis`, an optional peer dependency).
 * @packageDocumentation
 */
export {
  type RedisClientLike,
  type RedisConnectOptions,
  RedisSessionStore,
  type RedisSessionStoreEvents,
  type RedisSessionStoreOptions,
} from './redis-store.js';
