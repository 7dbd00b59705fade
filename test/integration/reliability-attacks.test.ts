/**
 * Attacks through the balanced fetch, against real servers on 127.0.0.1: the 57 URLs of
 * test/support/url-escapes.ts that try to leave the pool (another host, a path above the
 * backend's base path), and the 24 tampered, forged and replayed sticky-session cookies of
 * test/support/cookie-attacks.ts. No URL may escape and every cookie attack must be refused as
 * its row says; scripts/reliability.ts prints the same counts.
 */
import { describe, expect, it } from 'vitest';
import { COOKIE_ATTACKS, runCookieAttacks } from '../support/cookie-attacks.js';
import { runEscapes, URL_ESCAPES } from '../support/url-escapes.js';

describe('URL escapes', () => {
  it('has the 57 attempts docs/reliability.md counts, each distinct', () => {
    expect(URL_ESCAPES).toHaveLength(57);
    expect(new Set(URL_ESCAPES.map((a) => a.url)).size).toBe(57);
  });

  it('none of them escapes: each is refused before sending or stays under the base path', async () => {
    const results = await runEscapes();
    const escaped = results
      .filter((r) => r.outcome.kind === 'escaped')
      .map(
        (r) => `${JSON.stringify(r.attempt.url)} (${r.attempt.why}): ${JSON.stringify(r.outcome)}`,
      );
    expect(escaped).toEqual([]);
    // The others were refused outright or sent under /v1.
    for (const r of results) {
      if (r.outcome.kind === 'contained') expect(r.outcome.target.startsWith('/v1/')).toBe(true);
      else expect(r.outcome.kind).toBe('refused');
    }
  }, 30_000);
});

describe('signed-cookie attacks', () => {
  it('has the 24 attacks docs/reliability.md counts, each distinct', () => {
    expect(COOKIE_ATTACKS).toHaveLength(24);
    expect(new Set(COOKIE_ATTACKS.map((a) => a.name)).size).toBe(24);
  });

  it('refuses every one, for the reason its row gives', async () => {
    const results = await runCookieAttacks();
    expect(results.map((r) => [r.name, r.got])).toEqual(
      COOKIE_ATTACKS.map((a) => [a.name, a.expect]),
    );
    expect(results.every((r) => r.refused)).toBe(true);
  }, 30_000);
});
