/**
 * The balanced fetch against real HTTP servers on 127.0.0.1: how calls spread per algorithm,
 * and undici's fetch injected.
 */
import { Agent, Response as UndiciResponse, fetch as undiciFetch } from 'undici';
import { describe, expect, it } from 'vitest';
import { ConsistentHash } from '../../src/algorithms/consistent-hash.js';
import { LeastConnections } from '../../src/algorithms/least-connections.js';
import { PeakEwma } from '../../src/algorithms/peak-ewma.js';
import { PowerOfTwoChoices } from '../../src/algorithms/power-of-two-choices.js';
import { RandomPick } from '../../src/algorithms/random-pick.js';
import { RoundRobin } from '../../src/algorithms/round-robin.js';
import { WeightedRoundRobin } from '../../src/algorithms/weighted-round-robin.js';
import type { FetchFunction } from '../../src/fetch/types.js';
import {
  hang,
  inFlightEverywhere,
  load,
  shares,
  useFetchBackends,
} from '../support/fetch-backends.js';

const { servers, setup, slow } = useFetchBackends();

describe('distribution per algorithm', () => {
  it('RoundRobin splits evenly', async () => {
    const { pool, fetch } = await setup(3, new RoundRobin());
    const bodies = await load(fetch, 90, 6);
    expect(shares(bodies, 3)).toEqual([1 / 3, 1 / 3, 1 / 3]);
    expect(inFlightEverywhere(pool)).toEqual([0, 0, 0]);
  });

  it('WeightedRoundRobin follows the weights', async () => {
    const { fetch } = await setup(3, new WeightedRoundRobin(), {}, (urls) =>
      urls.map((url, i) => ({ url, weight: i + 1 })),
    );
    const bodies = await load(fetch, 90, 6);
    expect(shares(bodies, 3)).toEqual([15 / 90, 30 / 90, 45 / 90]);
  });

  it.each([
    ['RandomPick', () => new RandomPick()],
    ['PowerOfTwoChoices', () => new PowerOfTwoChoices()],
    ['LeastConnections', () => new LeastConnections()],
  ])('%s spreads over every backend', async (_name, make) => {
    const { pool, fetch } = await setup(3, make());
    const bodies = await load(fetch, 90, 6);
    for (const share of shares(bodies, 3)) expect(share).toBeGreaterThan(0.15);
    expect(inFlightEverywhere(pool)).toEqual([0, 0, 0]);
  });

  it.each([
    ['LeastConnections', () => new LeastConnections()],
    ['PowerOfTwoChoices', () => new PowerOfTwoChoices()],
    ['PeakEwma', () => new PeakEwma()],
  ])('%s sends less to a slow backend', async (_name, make) => {
    const { fetch } = await setup(3, make());
    servers[0]!.setHandler(slow(60, '0'));
    const bodies = await load(fetch, 90, 6);
    const [slowShare, ...fast] = shares(bodies, 3);
    for (const share of fast) expect(share).toBeGreaterThan(slowShare!);
    expect(slowShare!).toBeLessThan(0.25);
  });

  it('ConsistentHash with a key hook pins each key to one backend', async () => {
    const { fetch } = await setup(3, new ConsistentHash(), {
      key: (request) => new URL(request.url).searchParams.get('user') ?? undefined,
    });
    const owner = new Map<string, Set<string>>();
    for (let i = 0; i < 48; i++) {
      const user = `u${i % 12}`;
      const body = await (await fetch(`/profile?user=${user}`)).text();
      const set = owner.get(user) ?? new Set<string>();
      set.add(body);
      owner.set(user, set);
    }
    for (const set of owner.values()) expect(set.size).toBe(1);
    const used = new Set([...owner.values()].map((s) => [...s][0]));
    expect(used.size).toBeGreaterThan(1);
  });
});

describe("undici 7's fetch", () => {
  it('works when injected, timeouts and retries included', async () => {
    const agent = new Agent({ connections: 16 });
    try {
      const injected: FetchFunction = (url, init) =>
        undiciFetch(url, {
          ...(init as object),
          dispatcher: agent,
        }) as unknown as Promise<Response>;
      const { pool, fetch } = await setup(3, new RoundRobin({ startIndex: 0 }), {
        fetch: injected,
        timeoutMs: 300,
        // Spare retries, so a live backend that is slow on a loaded machine cannot fail the call.
        retries: 4,
      });
      servers[0]!.setHandler(hang);
      const responses: Response[] = [];
      for (let i = 0; i < 3; i++) {
        responses.push(...(await Promise.all([fetch('/work'), fetch('/work'), fetch('/work')])));
      }
      expect(responses.every((r) => r instanceof UndiciResponse)).toBe(true);
      const bodies = await Promise.all(responses.map((r) => r.text()));
      expect(bodies.every((b) => b === '1' || b === '2')).toBe(true);
      expect(pool.stats().backends[0]!.failures).toBeGreaterThan(0);
      expect(inFlightEverywhere(pool)).toEqual([0, 0, 0]);
    } finally {
      await agent.destroy();
    }
  });
});
