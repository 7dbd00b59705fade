/**
 * A {@link SessionStore} in Redis, so that every replica of a client fleet shares one sticky
 * table. `ioredis` is an optional peer dependency: this module only imports its types, and
 * loads it at run time in {@link RedisSessionStore.connect}.
 */
import { EventEmitter } from 'eventemitter3';
import type { RedisOptions } from 'ioredis';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { PoolClosedError } from '../errors/pool-closed-error.js';
import { SessionStoreError } from '../errors/session-store-error.js';
import { redactUrl } from '../redact.js';
import type { SessionRecord, SessionStore } from '../session/store.js';
import {
  checkDuration,
  checkOptions,
  checkString,
  isPlainObject,
  optDuration,
} from '../validate.js';

/**
 * The commands the store uses. An ioredis `Redis` (or `Cluster`) client fits; so does any client
 * with the same call shapes.
 */
export interface RedisClientLike {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, unit: 'PX', ttlMs: number): Promise<unknown>;
  del(key: string): Promise<number>;
  /** `EVAL script numkeys key... arg...`, for the atomic first-binding-wins write. */
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

/** Options of the {@link RedisSessionStore} constructor. */
export interface RedisSessionStoreOptions {
  /**
   * The Redis client, owned by the caller (the store never closes it). For calls that fail fast
   * while Redis is down instead of queueing, create it with `enableOfflineQueue: false`.
   */
  client: RedisClientLike;
  /**
   * Prefix of every key, so the sticky table can share a Redis database with other data.
   * @default 'loadwise:session:'
   */
  prefix?: string;
}

/** Options of {@link RedisSessionStore.connect}. */
export interface RedisConnectOptions {
  /**
   * Where Redis is, as a `redis://` or `rediss://` URL.
   * @default 'redis://127.0.0.1:6379'
   */
  url?: string;
  /**
   * Prefix of every key.
   * @default 'loadwise:session:'
   */
  prefix?: string;
  /**
   * How long to wait for the first connection before `connect()` rejects.
   * @default 2000
   */
  connectTimeoutMs?: number;
  /**
   * Further ioredis options. The store sets `enableOfflineQueue: false` (commands fail at once
   * while disconnected, so a Redis outage costs calls nothing) and `lazyConnect: true`; both can
   * be overridden here.
   * @default {}
   */
  redis?: RedisOptions;
}

/** Events of {@link RedisSessionStore}. */
export interface RedisSessionStoreEvents {
  /**
   * The connection of a client opened by `connect()` failed; ioredis reconnects on its own.
   * (With a client passed in, listen to the client itself.)
   */
  clientError: (error: unknown) => void;
  /**
   * A session key held something other than a string (Redis `WRONGTYPE`): the read was answered
   * as a miss, so the next binding replaces it, and the store stays up for every other key.
   */
  keyError: (e: { operation: 'get'; key: string; error: unknown }) => void;
}

/** The subset of an ioredis client that `close()` needs, for a client the store opened. */
interface OwnedClient extends RedisClientLike {
  quit(): Promise<unknown>;
  disconnect(): void;
}

/**
 * Sticky sessions in Redis: one key per session (`prefix` + session key) holding the backend
 * id and the binding time, expiring in Redis itself (`SET ... PX`), so nothing needs sweeping.
 *
 * The store bounds nothing itself: `SessionPersistenceManager` waits at most `storeTimeoutMs`
 * for each call and balances normally when Redis is slow or down. Sessions of a backend that
 * leaves the pool are not scanned for; they are rebound on their next use, or expire.
 *
 * @example
 * ```ts
 * import { RedisSessionStore } from 'loadwise/redis';
 * const store = await RedisSessionStore.connect({ url: 'redis://10.0.2.5:6379' });
 * const sessions = new SessionPersistenceManager(pool, { store });
 * // ...
 * await sessions.close();
 * await store.close();
 * ```
 */
export class RedisSessionStore
  extends EventEmitter<RedisSessionStoreEvents>
  implements SessionStore
{
  /** The key prefix. */
  readonly prefix: string;
  readonly #client: RedisClientLike;
  readonly #owned: OwnedClient | undefined;
  #closed = false;

  constructor(options: RedisSessionStoreOptions) {
    super();
    if (!isPlainObject(options)) {
      throw new LoadBalancerConfigError('RedisSessionStoreOptions', options, '{ client, prefix? }');
    }
    const o = checkOptions('RedisSessionStoreOptions', options, ['client', 'prefix']);
    const client = o.client as unknown;
    if (
      typeof client !== 'object' ||
      client === null ||
      typeof (client as RedisClientLike).get !== 'function' ||
      typeof (client as RedisClientLike).set !== 'function' ||
      typeof (client as RedisClientLike).del !== 'function' ||
      typeof (client as RedisClientLike).eval !== 'function'
    ) {
      throw new LoadBalancerConfigError(
        'client',
        client,
        'a Redis client (ioredis) with get, set, del and eval',
      );
    }
    this.#client = client as RedisClientLike;
    this.prefix =
      o.prefix === undefined
        ? 'loadwise:session:'
        : checkString('prefix', o.prefix, { nonEmpty: false });
    this.#owned = ownedClients.get(options);
  }

  /**
   * Opens a Redis connection (loading `ioredis`) and returns a store that owns it: `close()`
   * quits the connection.
   * @throws {Error} when `ioredis` is not installed.
   * @throws {SessionStoreError} (operation `connect`) when Redis cannot be reached in time.
   */
  static async connect(options: RedisConnectOptions = {}): Promise<RedisSessionStore> {
    const o = checkOptions('RedisConnectOptions', options, [
      'url',
      'prefix',
      'connectTimeoutMs',
      'redis',
    ]);
    const url = o.url === undefined ? 'redis://127.0.0.1:6379' : checkString('url', o.url);
    if (!/^rediss?:\/\//.test(url)) {
      throw new LoadBalancerConfigError('url', url, 'a redis:// or rediss:// URL');
    }
    const connectTimeout = optDuration('connectTimeoutMs', o.connectTimeoutMs, 2000, {
      min: 0,
      minExclusive: true,
    });
    if (o.redis !== undefined && !isPlainObject(o.redis)) {
      throw new LoadBalancerConfigError('redis', o.redis, 'an ioredis options object');
    }
    let Redis: typeof import('ioredis').Redis;
    try {
      ({ Redis } = await import('ioredis'));
    } catch (cause) {
      throw new Error(
        'RedisSessionStore.connect needs the optional peer dependency ioredis: npm install ioredis',
        { cause },
      );
    }
    const client = new Redis(url, {
      enableOfflineQueue: false,
      lazyConnect: true,
      connectTimeout,
      ...o.redis,
    });
    const storeOptions: RedisSessionStoreOptions = { client };
    if (o.prefix !== undefined) storeOptions.prefix = o.prefix;
    ownedClients.set(storeOptions, client);
    const store = new RedisSessionStore(storeOptions);
    // Connection errors also surface as failed commands; this keeps ioredis from printing
    // "Unhandled error event" and lets the owner watch them.
    let connectError: unknown;
    client.on('error', (error: unknown) => {
      connectError ??= error;
      store.emit('clientError', error);
    });
    try {
      await client.connect();
    } catch (error) {
      client.disconnect();
      // ioredis rejects with "Connection is closed."; the reason (ECONNREFUSED, ETIMEDOUT,
      // ENOTFOUND) came first, in an `error` event.
      throw new SessionStoreError(
        'connect',
        { timedOut: false, cause: connectError ?? error },
        redactUrl(url),
      );
    }
    return store;
  }

  /**
   * The session under `key`, or `undefined`. A key holding another Redis type (`WRONGTYPE`) is a
   * miss for this key alone, reported as a `keyError` event: one bad key must not make the
   * store look down for every session.
   */
  async get(key: string): Promise<SessionRecord | undefined> {
    this.#assertOpen();
    checkString('key', key, { nonEmpty: false });
    let raw: string | null;
    try {
      raw = await this.#client.get(this.prefix + key);
    } catch (error) {
      if (!isWrongType(error)) throw error;
      this.emit('keyError', { operation: 'get', key, error });
      return undefined;
    }
    return raw === null ? undefined : decode(raw);
  }

  /** Stores `record` under `key`, expiring in Redis after `ttlMs` (`SET key value PX ttlMs`). */
  async set(key: string, record: SessionRecord, ttlMs: number): Promise<void> {
    this.#assertOpen();
    checkString('key', key, { nonEmpty: false });
    checkRecord('record', record);
    checkDuration('ttlMs', ttlMs, { min: 0, minExclusive: true });
    // PX takes whole milliseconds >= 1.
    await this.#client.set(this.prefix + key, encode(record), 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  /**
   * Stores `record` unless another replica bound the key first, in one Lua script (atomic in
   * Redis): it writes when the key holds `expected`, nothing, or no valid session (another type
   * included), and otherwise answers the binding already there. Resolves to the binding held
   * afterwards. See {@link SessionStore.bind}.
   */
  async bind(
    key: string,
    record: SessionRecord,
    ttlMs: number,
    expected: SessionRecord | undefined,
  ): Promise<SessionRecord | undefined> {
    this.#assertOpen();
    checkString('key', key, { nonEmpty: false });
    checkRecord('record', record);
    if (expected !== undefined) checkRecord('expected', expected);
    checkDuration('ttlMs', ttlMs, { min: 0, minExclusive: true });
    const value = encode(record);
    const reply = await this.#client.eval(
      BIND_SCRIPT,
      1,
      this.prefix + key,
      value,
      Math.max(1, Math.ceil(ttlMs)),
      expected === undefined ? '' : encode(expected),
    );
    if (!Array.isArray(reply) || reply.length !== 2) {
      throw new Error(`RedisSessionStore.bind: unexpected reply from Redis: ${String(reply)}`);
    }
    const [written, held] = reply as [unknown, unknown];
    if (written === 1) return record;
    return typeof held === 'string' && held !== '' ? decode(held) : undefined;
  }

  /** Forgets the session under `key`; resolves to whether there was one. */
  async delete(key: string): Promise<boolean> {
    this.#assertOpen();
    checkString('key', key, { nonEmpty: false });
    return (await this.#client.del(this.prefix + key)) > 0;
  }

  /**
   * Quits the connection when `connect()` opened it (disconnecting at once if Redis does not
   * answer); a client passed in is left to its owner. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const owned = this.#owned;
    if (owned === undefined) return;
    try {
      await owned.quit();
    } catch {
      // QUIT cannot be sent while disconnected; dropping the socket ends the client all the same.
      owned.disconnect();
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new PoolClosedError('Redis session store');
  }
}

/** Clients opened by `connect()`, handed to the constructor without widening its options. */
const ownedClients = new WeakMap<RedisSessionStoreOptions, OwnedClient>();

/**
 * The atomic bind. KEYS[1] the session key; ARGV[1] the new value, ARGV[2] its TTL in ms,
 * ARGV[3] the value the caller read ('' for none). Writes when the key holds ARGV[3], nothing,
 * another type, or a value that is not `createdAt|backend` with a finite number (the rule of
 * `decode` below); answers {1, new value} when it wrote, else {0, the value held}.
 */
const BIND_SCRIPT = `
local current = false
if redis.call('TYPE', KEYS[1])['ok'] == 'string' then current = redis.call('GET', KEYS[1]) end
local function valid(v)
  local bar = string.find(v, '|', 1, true)
  if bar == nil or bar == 1 or bar == #v then return false end
  local n = tonumber(string.sub(v, 1, bar - 1))
  return n ~= nil and n == n and n ~= math.huge and n ~= -math.huge
end
if current == false or current == ARGV[3] or not valid(current) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1, ARGV[1]}
end
return {0, current}
`;

function checkRecord(field: string, record: unknown): asserts record is SessionRecord {
  if (
    !isPlainObject(record) ||
    typeof record['backend'] !== 'string' ||
    typeof record['createdAt'] !== 'number' ||
    !Number.isFinite(record['createdAt'])
  ) {
    throw new LoadBalancerConfigError(field, record, '{ backend: string, createdAt: number }');
  }
}

/** Redis answers a command on a key of another type with an error starting `WRONGTYPE`. */
function isWrongType(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('WRONGTYPE');
}

function encode(record: SessionRecord): string {
  return `${record.createdAt}|${record.backend}`;
}

/** `createdAt|backend`; the backend id may itself hold `|`, so only the first one splits. */
function decode(raw: string): SessionRecord | undefined {
  const bar = raw.indexOf('|');
  if (bar <= 0) return undefined;
  const createdAt = Number(raw.slice(0, bar));
  const backend = raw.slice(bar + 1);
  if (!Number.isFinite(createdAt) || backend.length === 0) return undefined;
  return { backend, createdAt };
}
