/**
 * Attacks on signed sticky-session cookies, as data: 24 cookies a client may forge, tamper with
 * or replay to steer its calls to a backend of its choosing, or to keep a session past its life.
 * They run through the balanced fetch with `SessionPersistenceManager` hooks (cookie mode, an
 * HMAC secret) against three real servers on 127.0.0.1; the manager's clock is a `ManualClock`
 * so replays can be aged exactly.
 *
 * Before each attack the runner makes three honest calls and keeps the `Set-Cookie` each got
 * (one per backend, round robin). An attack is refused when its call is either refused before
 * anything is sent (`InvalidRequestError`: a NUL or a line break in the header) or the manager
 * rejects its cookie (`cookieRejected`, with the reason the attack expects) and treats the call
 * as a new session; it succeeds when the cookie pins the call.
 *
 * Used by test/integration/reliability-attacks.test.ts (each attack a test) and by
 * scripts/reliability.ts (which prints how many were refused).
 */
import { RoundRobin } from '../../src/algorithms/round-robin.js';
import { systemClock } from '../../src/clock.js';
import { InvalidRequestError } from '../../src/errors/invalid-request-error.js';
import { createBalancedFetch } from '../../src/fetch/balanced-fetch.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import { createCookieSigner } from '../../src/session/cookie.js';
import {
  type CookieRejection,
  SessionPersistenceManager,
} from '../../src/session/session-persistence-manager.js';
import { ManualClock } from '../../src/testing/index.js';
import { closeAll, startServers, type TestServer } from './servers.js';

/** The service's secret (random-looking: weak secrets are refused). */
const SECRET = 'q7Vz3kP0wL9xR2mT8bN5cY1hJ6gF4dS0aE7uI3oK9pZ2';
/** A secret the service used before rotating it out. */
const RETIRED = 'Xw4tB9nM2qL7vC1zR8kP5jH3gD6fS0aY4eU7iO2pT9yN';
/** A secret the attacker made up. */
const ATTACKER = 'a8Kd3Lq0Wz7Nx2Vc5Bm9Rt1Yh6Gf4Js0Pe3Uo7Ii2Ss5';
/** Session limits of the service. */
const TTL_MS = 60_000;
const MAX_LIFE_MS = 3_600_000;

/** The cookies of one honest client per backend, split into their parts. */
export interface Honest {
  /** `token.created.seen.signature` of each backend, in pool order. */
  readonly values: readonly string[];
  /** The same, split at the dots. */
  readonly parts: readonly [string, string, string, string][];
}

export interface CookieAttack {
  readonly name: string;
  /** The rejection the manager must give (`undefined`: refused before sending). */
  readonly expect: CookieRejection | 'not-sent';
  /** The backend the attacker aims at (an index), or undefined when it only aims to persist. */
  readonly target?: number;
  /** Builds the `Cookie` header value; may age the manager's clock. */
  cookie(ctx: AttackContext): string | Promise<string>;
}

export interface AttackContext {
  readonly honest: Honest;
  readonly clock: ManualClock;
  /** A clock reading in a cookie: whole ms, base 36, as the manager writes it. */
  stamp(ms: number): string;
  /** Signs `payload` with `secret` as the manager would. */
  sign(secret: string, payload: string): Promise<string>;
  /** A cookie minted honestly by a manager using `secret` (for backend `index`). */
  mintWith(secret: string, index: number): Promise<string>;
}

const NAME = 'SERVERID';
const cookie = (value: string) => `${NAME}=${value}`;
const payloadOf = (p: readonly string[]) => `${p[0]}.${p[1]}.${p[2]}`;

export const COOKIE_ATTACKS: readonly CookieAttack[] = [
  // ------------------------------------------------ steering to another backend
  {
    name: "another backend's token under this cookie's signature",
    expect: 'bad-signature',
    target: 2,
    cookie: ({ honest }) => {
      const [, created, seen, sig] = honest.parts[1]!;
      return cookie(`${honest.parts[2]![0]}.${created}.${seen}.${sig}`);
    },
  },
  {
    name: 'the signature removed',
    expect: 'bad-signature',
    target: 1,
    cookie: ({ honest }) => cookie(payloadOf(honest.parts[1]!)),
  },
  {
    name: "another cookie's signature",
    expect: 'bad-signature',
    target: 1,
    cookie: ({ honest }) => cookie(`${payloadOf(honest.parts[1]!)}.${honest.parts[2]![3]}`),
  },
  {
    name: 'the signature cut by one character',
    expect: 'bad-signature',
    target: 1,
    cookie: ({ honest }) => cookie(honest.values[1]!.slice(0, -1)),
  },
  {
    name: 'one character of the signature changed',
    expect: 'bad-signature',
    target: 1,
    cookie: ({ honest }) => {
      const v = honest.values[1]!;
      const last = v.at(-1) === 'A' ? 'B' : 'A';
      return cookie(`${v.slice(0, -1)}${last}`);
    },
  },
  {
    name: 'the signature in upper case',
    expect: 'bad-signature',
    target: 1,
    cookie: ({ honest }) => {
      const p = honest.parts[1]!;
      return cookie(`${payloadOf(p)}.${p[3].toUpperCase()}`);
    },
  },
  {
    name: 'the signature padded with =',
    expect: 'bad-signature',
    target: 1,
    cookie: ({ honest }) => cookie(`${honest.values[1]}==`),
  },
  {
    name: 'the signature percent-encoded',
    expect: 'bad-signature',
    target: 1,
    cookie: ({ honest }) => {
      const p = honest.parts[1]!;
      return cookie(`${payloadOf(p)}.%${p[3].charCodeAt(0).toString(16)}${p[3].slice(1)}`);
    },
  },
  {
    name: 'an extra segment after the signature',
    expect: 'bad-signature',
    target: 1,
    cookie: ({ honest }) => cookie(`${honest.values[1]}.x`),
  },
  {
    name: 'a payload signed with a secret the attacker made up',
    expect: 'bad-signature',
    target: 2,
    cookie: async ({ honest, sign }) => cookie(await sign(ATTACKER, payloadOf(honest.parts[2]!))),
  },
  {
    name: 'a cookie minted under a secret the attacker made up',
    expect: 'bad-signature',
    target: 2,
    cookie: async ({ mintWith }) => cookie(await mintWith(ATTACKER, 2)),
  },
  {
    name: 'a cookie signed with a secret since rotated out',
    expect: 'bad-signature',
    target: 2,
    cookie: async ({ mintWith }) => cookie(await mintWith(RETIRED, 2)),
  },
  {
    name: 'the forged cookie first, the honest one second',
    expect: 'bad-signature',
    target: 2,
    cookie: ({ honest }) => {
      const [, created, seen, sig] = honest.parts[0]!;
      const forged = `${honest.parts[2]![0]}.${created}.${seen}.${sig}`;
      return `${cookie(forged)}; ${cookie(honest.values[0]!)}`;
    },
  },
  {
    name: 'a forged value in double quotes',
    expect: 'bad-signature',
    target: 2,
    cookie: ({ honest }) => {
      const [, created, seen, sig] = honest.parts[1]!;
      return `${NAME}="${honest.parts[2]![0]}.${created}.${seen}.${sig}"`;
    },
  },
  // ------------------------------------------------ staying longer
  {
    name: 'the creation time moved forward under the old signature',
    expect: 'bad-signature',
    cookie: ({ honest, stamp, clock }) => {
      // Half the idle time later, the client restamps its cookie as if it were new.
      clock.advance(TTL_MS / 2);
      const [token, , , sig] = honest.parts[1]!;
      return cookie(`${token}.${stamp(clock.now())}.${stamp(clock.now())}.${sig}`);
    },
  },
  {
    name: 'the last-seen time pushed into the future',
    expect: 'bad-signature',
    cookie: ({ honest, stamp, clock }) => {
      const [token, created, , sig] = honest.parts[1]!;
      return cookie(`${token}.${created}.${stamp(clock.now() + 10 * MAX_LIFE_MS)}.${sig}`);
    },
  },
  {
    name: 'a cookie replayed after its maximum life',
    expect: 'expired',
    cookie: ({ honest, clock }) => {
      clock.advance(MAX_LIFE_MS);
      return cookie(honest.values[1]!);
    },
  },
  {
    name: 'a cookie replayed after its idle time-to-live',
    expect: 'expired',
    cookie: ({ honest, clock }) => {
      clock.advance(TTL_MS);
      return cookie(honest.values[1]!);
    },
  },
  // ------------------------------------------------ malformed and smuggled
  {
    name: 'an over-long cookie that starts like an honest one',
    expect: 'malformed',
    target: 1,
    cookie: ({ honest }) => cookie(`${honest.values[1]}${'A'.repeat(300)}`),
  },
  {
    name: 'a cookie that is only a backend address',
    expect: 'bad-signature',
    target: 1,
    cookie: () => cookie('127.0.0.1:8080'),
  },
  {
    name: 'an empty signature',
    expect: 'bad-signature',
    target: 1,
    cookie: ({ honest }) => cookie(`${payloadOf(honest.parts[1]!)}.`),
  },
  {
    name: 'signature bytes of the right length, all zero',
    expect: 'bad-signature',
    target: 1,
    cookie: ({ honest }) => cookie(`${payloadOf(honest.parts[1]!)}.${'A'.repeat(22)}`),
  },
  {
    name: 'a NUL smuggled into the cookie header',
    expect: 'not-sent',
    target: 2,
    cookie: ({ honest }) => `${cookie(honest.values[0]!)}\0${cookie(honest.values[2]!)}`,
  },
  {
    name: 'a line break smuggling a second cookie header',
    expect: 'not-sent',
    target: 2,
    cookie: ({ honest }) => `${cookie(honest.values[0]!)}\r\nCookie: ${cookie(honest.values[2]!)}`,
  },
];

/** What one attack got. */
export interface AttackResult {
  readonly name: string;
  /** Whether the attack was refused as it must be. */
  readonly refused: boolean;
  /** How: a cookie rejection's reason, `not-sent`, or `accepted`. */
  readonly got: CookieRejection | 'not-sent' | 'accepted' | 'other';
  readonly expected: CookieRejection | 'not-sent';
  /** The backend that answered (an index), when a call was made. */
  readonly answeredBy: number | undefined;
}

/** Three servers, a pool, a cookie-mode session manager on a ManualClock, a balanced fetch. */
async function rig() {
  const servers: TestServer[] = await startServers(3);
  const pool = new BackendPool({
    backends: servers.map((s) => s.url),
    algorithm: new RoundRobin({ startIndex: 0 }),
    clock: systemClock,
    skew: false,
  });
  const clock = new ManualClock(1_000_000_000);
  const sessions = new SessionPersistenceManager(pool, {
    cookie: true,
    secret: SECRET,
    ttlMs: TTL_MS,
    maxLifeMs: MAX_LIFE_MS,
    clock,
    cleanupIntervalMs: 0,
  });
  const fetch = createBalancedFetch(pool, { ...sessions.forFetch(), retries: 0 });
  const close = async () => {
    await sessions.close();
    await pool.close();
    await closeAll(servers);
  };
  return { servers, pool, clock, sessions, fetch, close };
}

/** Runs every attack; returns what each got. */
export async function runCookieAttacks(): Promise<AttackResult[]> {
  const r = await rig();
  const rejections: CookieRejection[] = [];
  let sessionsMade = 0;
  r.sessions.on('cookieRejected', ({ reason }) => rejections.push(reason));
  r.sessions.on('bound', () => sessionsMade++);
  r.sessions.on('rebound', () => sessionsMade++);
  const call = async (header?: string) => {
    const res = await r.fetch('/x', header === undefined ? {} : { headers: { cookie: header } });
    const body = await res.text();
    return { answeredBy: Number(body), setCookie: res.headers.get('set-cookie') };
  };
  const ctx: AttackContext = {
    honest: { values: [], parts: [] },
    clock: r.clock,
    stamp: (ms) => Math.floor(ms).toString(36),
    sign: (secret, payload) => createCookieSigner(secret).sign(payload),
    async mintWith(secret, index) {
      // Another manager over the same pool, as a service using `secret` would have minted it.
      const other = new SessionPersistenceManager(r.pool, {
        cookie: true,
        secret,
        clock: r.clock,
        cleanupIntervalMs: 0,
      });
      try {
        for (;;) {
          const got = await other.acquire({ cookie: null });
          got.lease.release();
          if (got.lease.backend.id === r.pool.backends()[index]!.id) {
            return got.setCookie!.split(';')[0]!.slice(NAME.length + 1);
          }
        }
      } finally {
        await other.close();
      }
    },
  };
  try {
    const results: AttackResult[] = [];
    for (const attack of COOKIE_ATTACKS) {
      // Honest cookies, one per backend, minted now.
      const values: string[] = [];
      for (let i = 0; i < 3; i++) {
        const { answeredBy, setCookie } = await call();
        values[answeredBy] = setCookie!.split(';')[0]!.slice(NAME.length + 1);
      }
      Object.assign(ctx.honest, {
        values,
        parts: values.map((v) => v.split('.') as [string, string, string, string]),
      });
      const header = await attack.cookie(ctx);
      const rejectedBefore = rejections.length;
      const madeBefore = sessionsMade;
      let got: AttackResult['got'];
      let answeredBy: number | undefined;
      try {
        ({ answeredBy } = await call(header));
        const rejected = rejections.slice(rejectedBefore);
        // Accepted: no rejection, and no new session made (the cookie pinned the call).
        got =
          rejected.length === 1 && sessionsMade === madeBefore + 1
            ? rejected[0]!
            : rejected.length === 0 && sessionsMade === madeBefore
              ? 'accepted'
              : 'other';
      } catch (error) {
        got = error instanceof InvalidRequestError ? 'not-sent' : 'other';
      }
      results.push({
        name: attack.name,
        refused: got === attack.expect,
        got,
        expected: attack.expect,
        answeredBy,
      });
    }
    return results;
  } finally {
    await r.close();
  }
}
