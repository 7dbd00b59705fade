/**
 * Attempts to make the balanced fetch leave its pool, as data: 57 URLs a caller (or whoever
 * controls part of a URL, such as a path segment taken from a request) may pass, each aiming at
 * another host or at a path above the backend's base path. They run against real servers on
 * 127.0.0.1: a backend whose base path is `/v1`, and an "evil" server on another port.
 *
 * A URL escapes when the evil server receives anything, or when the backend receives a request
 * target that a lenient server would resolve outside `/v1`: percent-decoded up to three times
 * (overlong UTF-8 for `/`, `.` and `\` included, as old IIS did), `\` read as `/`, path
 * parameters (`..;`) and everything after a NUL dropped, dot segments resolved. Otherwise the URL
 * was refused before anything was sent, or it was sent and stayed under `/v1`.
 *
 * Used by test/integration/reliability-attacks.test.ts (0 escapes, each URL a test) and by
 * scripts/reliability.ts (which prints the count).
 */
import { RequestRefusedError } from '../../src/errors/request-refused-error.js';
import { createBalancedFetch } from '../../src/fetch/balanced-fetch.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import { startServer, type TestServer, unusedPort } from './servers.js';

/** One attempt. `{backend}`, `{evil}` and `{evilPort}` are filled in with the real addresses. */
export interface UrlEscape {
  readonly url: string;
  /** What it tries. */
  readonly why: string;
}

export const URL_ESCAPES: readonly UrlEscape[] = [
  // ------------------------------------------------ another host, from a relative URL
  { url: '//{evil}/x', why: 'protocol-relative URL' },
  { url: '\\\\{evil}/x', why: 'backslashes read as slashes' },
  { url: '/\\{evil}/x', why: 'slash and backslash' },
  { url: '\\/{evil}/x', why: 'backslash and slash' },
  { url: '///{evil}/x', why: 'three slashes' },
  { url: '/\t/{evil}/x', why: 'a tab the URL parser drops' },
  { url: '/\n/{evil}/x', why: 'a newline the URL parser drops' },
  { url: '/\r\n/{evil}/x', why: 'CR LF the URL parser drops' },
  { url: '/%2f/{evil}/x', why: 'an encoded slash' },
  { url: ' //{evil}/x', why: 'a leading space' },
  // ------------------------------------------------ another host, absolute
  { url: 'http://{evil}/x', why: 'another origin' },
  { url: 'https://{evil}/x', why: 'another origin over TLS' },
  { url: 'HTTP://{evil}/x', why: 'an upper-case scheme' },
  { url: 'http:/{evil}/x', why: 'one slash after the scheme' },
  { url: 'http:{evil}/x', why: 'no slash after the scheme' },
  { url: 'http:\\\\{evil}/x', why: 'backslashes after the scheme' },
  { url: 'http://{backend}@{evil}/x', why: 'the backend as user name' },
  { url: 'http://{backend}:pw@{evil}/x', why: 'the backend as credentials' },
  { url: 'http://users.internal@{evil}/x', why: 'the service origin as user name' },
  { url: 'http://{evil}#@{backend}/v1/x', why: 'the backend in the fragment' },
  { url: 'http://{evil}?@{backend}/v1/x', why: 'the backend in the query' },
  { url: 'http://localhost:{evilPort}/x', why: 'the evil port by host name' },
  { url: 'http://[::ffff:127.0.0.1]:{evilPort}/x', why: 'an IPv4-mapped IPv6 address' },
  { url: 'http://2130706433:{evilPort}/x', why: 'a decimal IPv4 address' },
  { url: 'http://0x7f.0.0.1:{evilPort}/x', why: 'a hexadecimal IPv4 address' },
  { url: 'http://127.1:{evilPort}/x', why: 'a shortened IPv4 address' },
  { url: 'http://users.internal.evil.example/x', why: 'the service origin as a subdomain' },
  { url: 'ht\ttp://{evil}/x', why: 'a tab inside the scheme' },
  { url: ' http://{evil}/x', why: 'a space before the scheme' },
  // ------------------------------------------------ the backend's host, another port or scheme
  { url: 'http://127.0.0.1:{evilPort}/v1/x', why: "the backend's address, another port" },
  { url: 'https://{backend}/v1/x', why: 'a scheme change' },
  { url: 'ws://{backend}/v1/x', why: 'a WebSocket scheme' },
  { url: 'ftp://{backend}/v1/x', why: 'an FTP scheme' },
  { url: 'javascript:alert(1)', why: 'a script URL' },
  { url: 'file:///etc/passwd', why: 'a file URL' },
  { url: 'data:text/plain,hi', why: 'a data URL' },
  { url: 'blob:http://{evil}/x', why: 'a blob URL of another origin' },
  // ------------------------------------------------ above the base path
  { url: '/../admin', why: 'a dot segment' },
  { url: '/a/../../admin', why: 'dot segments past the root' },
  { url: '/%2e%2e/admin', why: 'encoded dots' },
  { url: '/.%2E/admin', why: 'half-encoded dots' },
  { url: '/..%2fadmin', why: 'an encoded slash after dots (Tomcat, Spring)' },
  { url: '/%2e%2e%2fadmin', why: 'encoded dots and slash' },
  { url: '/..;/admin', why: 'a path parameter on dots (Tomcat)' },
  { url: '/%5c../admin', why: 'an encoded backslash (IIS)' },
  { url: '/..%5cadmin', why: 'dots and an encoded backslash (IIS)' },
  { url: '/%252e%252e/admin', why: 'double-encoded dots' },
  { url: '/..%252fadmin', why: 'a double-encoded slash' },
  { url: '/..%00/admin', why: 'an encoded NUL' },
  { url: '/a/..%2f..%2fadmin', why: 'two encoded climbs' },
  { url: '/..%c0%afadmin', why: 'an overlong UTF-8 slash (old IIS)' },
  { url: '/%c0%ae%c0%ae/admin', why: 'overlong UTF-8 dots (old IIS)' },
  { url: '/..\\admin', why: 'dots and a backslash' },
  { url: '/\\..\\admin', why: 'backslashes around dots' },
  { url: 'http://{backend}/v1/../../admin', why: "dots in an absolute URL of the backend's" },
  { url: 'http://users.internal/../admin', why: 'dots in an absolute URL of the service' },
  { url: '?next=/../../admin', why: 'dots in the query only' },
];

/** What became of one attempt. */
export type EscapeOutcome =
  | { kind: 'refused'; reason: string }
  | { kind: 'contained'; target: string }
  | { kind: 'escaped'; detail: string };

/** The backend, the evil server, and a balanced fetch over a pool of the backend. */
export interface EscapeRig {
  readonly backend: TestServer;
  readonly evil: TestServer;
  readonly targets: string[];
  readonly fetch: ReturnType<typeof createBalancedFetch>;
  close(): Promise<void>;
}

export async function escapeRig(): Promise<EscapeRig> {
  const targets: string[] = [];
  const backend = await startServer((req, res) => {
    targets.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('backend');
  });
  const evil = await startServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('evil');
  });
  const pool = new BackendPool({ backends: [`${backend.url}/v1`], skew: false });
  const fetch = createBalancedFetch(pool, {
    serviceOrigins: ['http://users.internal'],
    retries: 0,
    deadlineMs: 5000,
  });
  return {
    backend,
    evil,
    targets,
    fetch,
    async close() {
      await pool.close();
      await Promise.all([backend.close(), evil.close()]);
    },
  };
}

/** The attempt's URL with the real addresses. */
export function fill(url: string, rig: EscapeRig): string {
  return url
    .replaceAll('{backend}', `127.0.0.1:${rig.backend.port}`)
    .replaceAll('{evilPort}', String(rig.evil.port))
    .replaceAll('{evil}', `127.0.0.1:${rig.evil.port}`);
}

/** Sends one attempt and judges it. */
export async function tryEscape(rig: EscapeRig, attempt: UrlEscape): Promise<EscapeOutcome> {
  const evilBefore = rig.evil.hits;
  rig.targets.length = 0;
  let refusal: unknown;
  try {
    const res = await rig.fetch(fill(attempt.url, rig));
    await res.text();
  } catch (error) {
    refusal = error;
  }
  if (rig.evil.hits !== evilBefore) {
    return {
      kind: 'escaped',
      detail: `the evil server got ${rig.evil.hits - evilBefore} request(s)`,
    };
  }
  const outside = rig.targets.find((t) => !underBase(t, '/v1'));
  if (outside !== undefined) {
    return {
      kind: 'escaped',
      detail: `the backend got ${JSON.stringify(outside)}, which a lenient server reads as ${JSON.stringify(lenientPath(outside))}`,
    };
  }
  if (rig.targets.length > 0) return { kind: 'contained', target: rig.targets[0]! };
  if (refusal instanceof RequestRefusedError) return { kind: 'refused', reason: refusal.reason };
  // Nothing was sent, and no typed refusal: count it as refused, saying what happened.
  return { kind: 'refused', reason: `not sent: ${String(refusal)}` };
}

/** Runs every attempt; a fresh rig for the lot. */
export async function runEscapes(): Promise<{ attempt: UrlEscape; outcome: EscapeOutcome }[]> {
  const rig = await escapeRig();
  try {
    const out: { attempt: UrlEscape; outcome: EscapeOutcome }[] = [];
    for (const attempt of URL_ESCAPES)
      out.push({ attempt, outcome: await tryEscape(rig, attempt) });
    return out;
  } finally {
    await rig.close();
  }
}

/** A port nothing listens on, for attempts that must not connect anywhere. */
export { unusedPort };

/** Whether a lenient server would keep `target` under `base`. */
export function underBase(target: string, base: string): boolean {
  const p = lenientPath(target);
  return p === base || p.startsWith(`${base}/`);
}

/**
 * The path a lenient server makes of a request target: percent-decoded up to three times
 * (overlong UTF-8 included), `\` as `/`, `;` parameters and anything after a NUL dropped, dot
 * segments resolved.
 */
export function lenientPath(target: string): string {
  let p = target.split('?')[0] ?? '';
  for (let i = 0; i < 3; i++) {
    const decoded = percentDecode(p);
    if (decoded === p) break;
    p = decoded;
  }
  const nul = p.indexOf('\0');
  if (nul >= 0) p = p.slice(0, nul);
  p = p.replaceAll('\\', '/').replace(/;[^/]*/g, '');
  const out: string[] = [];
  for (const segment of p.split('/').slice(1)) {
    if (segment === '..') out.pop();
    else if (segment !== '.') out.push(segment);
  }
  return `/${out.join('/')}`;
}

/** Byte-wise percent-decoding, reading overlong UTF-8 forms of `/`, `.` and `\` as those. */
function percentDecode(s: string): string {
  return s
    .replace(/%c0%af|%e0%80%af/gi, '/')
    .replace(/%c0%ae|%e0%80%ae/gi, '.')
    .replace(/%c1%9c/gi, '\\')
    .replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}
