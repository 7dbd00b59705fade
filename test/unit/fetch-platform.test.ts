/**
 * What the balanced fetch needs from each runtime's `fetch`: how it is called, how its failures
 * are classified, and which ports it refuses. The error shapes below are what each runtime
 * really throws (recorded from Node 20's undici, Bun 1.4, Deno 2.9 and Chromium against loopback
 * servers that refuse, reset and hang); `npm run test:runtimes` checks them in the runtimes
 * themselves.
 */
import { describe, expect, it } from 'vitest';
import { RoundRobin } from '../../src/algorithms/round-robin.js';
import { AllAttemptsFailedError } from '../../src/errors/all-attempts-failed-error.js';
import { BadPortError } from '../../src/errors/bad-port-error.js';
import { badPort } from '../../src/fetch/bad-ports.js';
import { createBalancedFetch } from '../../src/fetch/balanced-fetch.js';
import { classifyError } from '../../src/fetch/outcome.js';
import type { FetchFunction } from '../../src/fetch/types.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';
import type { FailureKind } from '../../src/types.js';

function withCause(message: string, cause: Error): TypeError {
  return new TypeError(message, { cause });
}
function coded(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

const CASES: ReadonlyArray<[string, unknown, FailureKind]> = [
  // Node 20 (undici)
  [
    'node: refused',
    withCause('fetch failed', coded('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED')),
    'connect',
  ],
  [
    'node: unknown host',
    withCause('fetch failed', coded('getaddrinfo ENOTFOUND x.invalid', 'ENOTFOUND')),
    'connect',
  ],
  ['node: reset', withCause('fetch failed', coded('read ECONNRESET', 'ECONNRESET')), 'reset'],
  [
    'node: closed before answering',
    withCause('fetch failed', coded('other side closed', 'UND_ERR_SOCKET')),
    'reset',
  ],
  // Node's fetch refuses the backend's port: nothing was sent, another backend may do.
  ['node: bad port', withCause('fetch failed', new Error('bad port')), 'connect'],
  // Bun 1.4: the code is on the TypeError itself
  [
    'bun: refused',
    Object.assign(
      new TypeError('ECONNREFUSED: Unable to connect. Is the computer able to access the url?'),
      { code: 'ECONNREFUSED' },
    ),
    'connect',
  ],
  [
    'bun: reset',
    Object.assign(new TypeError('ECONNRESET: The socket connection was closed unexpectedly.'), {
      code: 'ECONNRESET',
    }),
    'reset',
  ],
  // Deno 2.9: no code, hyper's stage in the cause's message
  [
    'deno: refused',
    withCause(
      'fetch failed',
      new Error(
        'error sending request for url (http://127.0.0.1:39999/): client error (Connect): tcp connect error: Connection refused (os error 111)',
      ),
    ),
    'connect',
  ],
  [
    'deno: refused (Windows wording)',
    withCause(
      'fetch failed',
      new Error(
        'error sending request for url (http://127.0.0.1:39999/): client error (Connect): tcp connect error: No connection could be made because the target machine actively refused it. (os error 10061)',
      ),
    ),
    'connect',
  ],
  [
    'deno: unknown host',
    withCause(
      'fetch failed',
      new Error(
        'error sending request for url (http://x.invalid:1/): client error (Connect): dns error: failed to lookup address information: Name or service not known',
      ),
    ),
    'connect',
  ],
  [
    'deno 1.x: refused',
    new TypeError(
      'error sending request for url (http://127.0.0.1:39999/): error trying to connect: tcp connect error: Connection refused (os error 111)',
    ),
    'connect',
  ],
  [
    'deno: reset',
    withCause('fetch failed', new Error('Connection reset by peer (os error 104)')),
    'reset',
  ],
  [
    'deno: closed before answering',
    withCause(
      'fetch failed',
      new Error(
        'error sending request from 127.0.0.1:56314 for http://127.0.0.1:41002/ (127.0.0.1:41002): client error (SendRequest): connection closed before message completed',
      ),
    ),
    'reset',
  ],
  // The runtime refuses the backend's port: nothing was sent, another backend may do.
  ['deno: bad port', new TypeError('Fetch failed: Requests to port 6000 are blocked'), 'connect'],
  // Browsers: one message for every network failure, refused or reset
  ['chromium', new TypeError('Failed to fetch'), 'reset'],
  ['firefox', new TypeError('NetworkError when attempting to fetch resource.'), 'reset'],
  ['safari', new TypeError('Load failed'), 'reset'],
  // Not a network failure: a plain Error mentioning the words is not classified
  ['not a TypeError', new Error('client error (Connect)'), 'other'],
];

describe('classifyError: the failures each runtime throws', () => {
  it.each(CASES)('%s', (_name, error, kind) => {
    expect(classifyError(error)).toBe(kind);
  });
});

function pool(backends: string[]): { clock: ManualClock; pool: BackendPool } {
  const clock = new ManualClock();
  return {
    clock,
    pool: new BackendPool({
      backends,
      algorithm: new RoundRobin({ startIndex: 0 }),
      clock,
      random: seededRandom(1),
      skew: false,
    }),
  };
}

async function drive<T>(clock: ManualClock, promise: Promise<T>): Promise<T> {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  for (let i = 0; i < 2000 && !settled; i++) await clock.advanceAsync(5);
  return promise;
}

describe('a Deno refusal is retried like any refused connection', () => {
  it('a POST (not idempotent) goes to the next backend after Deno reports a refused connect', async () => {
    const { clock, pool: p } = pool(['http://a:8080', 'http://b:8080']);
    const hosts: string[] = [];
    const fetch: FetchFunction = async (url) => {
      const host = new URL(url).host;
      hosts.push(host);
      if (host === 'a:8080') {
        throw withCause(
          'fetch failed',
          new Error(
            'error sending request for url (http://a:8080/x): client error (Connect): tcp connect error: Connection refused (os error 111)',
          ),
        );
      }
      return new Response('ok');
    };
    const balanced = createBalancedFetch(p, { fetch, retries: 1 });
    const res = await drive(clock, balanced('/x', { method: 'POST', body: 'x' }));
    expect(await res.text()).toBe('ok');
    expect(hosts).toEqual(['a:8080', 'b:8080']);
    await p.close();
  });
});

describe('the platform fetch is called as a plain function', () => {
  it('never with the configuration as `this` (browsers throw Illegal invocation)', async () => {
    const { clock, pool: p } = pool(['http://a:8080']);
    // What a browser's fetch does: WebIDL accepts `this` undefined (the global) and rejects any
    // other object.
    const fetch = function (this: unknown, _url: string): Promise<Response> {
      if (this !== undefined && this !== globalThis) {
        return Promise.reject(
          new TypeError("Failed to execute 'fetch' on 'Window': Illegal invocation"),
        );
      }
      return Promise.resolve(new Response('ok'));
    };
    const balanced = createBalancedFetch(p, { fetch, retries: 0 });
    const res = await drive(clock, balanced('/x'));
    expect(await res.text()).toBe('ok');
    await p.close();
  });
});

describe('bad ports (Fetch standard, port blocking)', () => {
  it.each([
    ['http://10.0.1.10:6000', 6000],
    ['https://10.0.1.10:10080/v1', 10080],
    ['http://[::1]:6667', 6667],
    ['http://10.0.1.10:8080', undefined],
    ['http://10.0.1.10', undefined],
    ['https://10.0.1.10:443', undefined],
    ['tcp://10.0.1.10:6000', undefined],
  ])('%s -> %s', (url, port) => {
    expect(badPort(url)).toBe(port);
  });

  it('createBalancedFetch refuses a target holding a backend on a bad port, naming the rule', () => {
    const { pool: p } = pool(['http://10.0.1.10:8080', 'http://10.0.1.11:6000']);
    let error: unknown;
    try {
      createBalancedFetch(p, { fetch: async () => new Response('') });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BadPortError);
    expect(error).toMatchObject({
      code: 'LB_BAD_PORT',
      backendId: '10.0.1.11:6000',
      url: 'http://10.0.1.11:6000',
      port: 6000,
    });
    expect((error as Error).message).toContain('https://fetch.spec.whatwg.org/#port-blocking');
    expect((error as Error).message).toContain('pool.acquire()');
  });

  it('a backend added later on a bad port fails its attempts before sending, and the call goes elsewhere', async () => {
    const { clock, pool: p } = pool(['http://10.0.1.10:8080']);
    const urls: string[] = [];
    const balanced = createBalancedFetch(p, {
      fetch: async (url) => {
        urls.push(url);
        return new Response('ok');
      },
      retries: 1,
    });
    p.add('http://10.0.1.11:6000');
    const failures: unknown[] = [];
    balanced.events.on('failure', (e) => failures.push(e.error));
    // Round robin: the first call lands on 10.0.1.10, the second on the new backend.
    for (let i = 0; i < 2; i++)
      expect(await (await drive(clock, balanced('/x'))).text()).toBe('ok');
    expect(urls).toEqual(['http://10.0.1.10:8080/x', 'http://10.0.1.10:8080/x']);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toBeInstanceOf(BadPortError);
    const bad = p.stats().backends.find((b) => b.id === '10.0.1.11:6000');
    expect(bad?.failures).toBe(1);
    expect(p.stats().inFlight).toBe(0);
    await p.close();
  });

  it('with nowhere else to go, the call fails with the bad port as the cause', async () => {
    const { clock, pool: p } = pool([]);
    const balanced = createBalancedFetch(p, { fetch: async () => new Response('ok'), retries: 2 });
    p.add('http://10.0.1.11:6000');
    const error = await drive(clock, balanced('/x')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AllAttemptsFailedError);
    expect((error as AllAttemptsFailedError).attempts[0]).toMatchObject({ outcome: 'connect' });
    expect((error as Error).cause).toBeInstanceOf(BadPortError);
    await p.close();
  });
});
