import { LoadBalancerConfigError } from '../errors/config-error.js';
import { redactUrl } from '../redact.js';
import type { BackendSpec } from '../types.js';
import { checkNumber, checkOptions, checkString, isPlainObject } from '../validate.js';

/** A validated backend definition. @internal */
export interface NormalizedBackend {
  id: string;
  url: string;
  weight: number;
  zone: string | undefined;
  priority: number;
  metadata: Readonly<Record<string, unknown>>;
}

const BACKEND_KEYS = ['url', 'weight', 'id', 'zone', 'priority', 'metadata'] as const;

/**
 * Validates one backend spec and derives its id and normalized URL.
 * @internal
 */
export function normalizeBackend(spec: BackendSpec, field: string): NormalizedBackend {
  const init = typeof spec === 'string' ? { url: spec } : spec;
  if (!isPlainObject(init)) {
    throw new LoadBalancerConfigError(
      field,
      spec,
      'a URL string or an object { url, weight?, id?, zone?, priority?, metadata? }',
    );
  }
  checkOptions(field, init, BACKEND_KEYS);
  const rawUrl = checkString(`${field}.url`, init.url);
  // Error messages end up in logs: never echo credentials given in the URL.
  const shown = redactUrl(rawUrl);
  // The URL parser drops tabs and newlines anywhere and trims C0 controls at the ends (WHATWG
  // URL, "basic URL parser"), so such a URL would be silently rewritten: refuse it instead.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused.
  if (/[\x00-\x1f\x7f]/.test(rawUrl)) {
    throw new LoadBalancerConfigError(
      `${field}.url`,
      shown,
      'a URL without control characters (CR, LF, tab, NUL: the URL parser would drop them silently)',
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(rawUrl);
  } catch (cause) {
    throw new LoadBalancerConfigError(
      `${field}.url`,
      shown,
      'an absolute URL such as "http://10.0.1.10:8080"',
      withScheme(rawUrl, { cause }),
    );
  }
  if (parsed.host === '') {
    // `localhost:8080` parses as the scheme `localhost:` with the path `8080`.
    throw new LoadBalancerConfigError(
      `${field}.url`,
      shown,
      'a URL with a host',
      withScheme(rawUrl, {}),
    );
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new LoadBalancerConfigError(
      `${field}.url`,
      shown,
      'a URL without credentials (pass them as request headers)',
    );
  }
  if (parsed.search !== '' || parsed.hash !== '') {
    throw new LoadBalancerConfigError(
      `${field}.url`,
      shown,
      'a base URL without query or fragment',
    );
  }
  const path = basePath(parsed);
  const url = baseUrl(parsed);
  const weight =
    init.weight === undefined
      ? 1
      : checkNumber(`${field}.weight`, init.weight, { min: 0, minExclusive: true });
  const hostPort =
    parsed.port === '' ? `${parsed.hostname}:${defaultPort(parsed.protocol)}` : parsed.host;
  const id = init.id === undefined ? `${hostPort}${path}` : checkString(`${field}.id`, init.id);
  const zone = init.zone === undefined ? undefined : checkString(`${field}.zone`, init.zone);
  const priority =
    init.priority === undefined
      ? 0
      : checkNumber(`${field}.priority`, init.priority, { min: 0, integer: true });
  if (init.metadata !== undefined && !isPlainObject(init.metadata)) {
    throw new LoadBalancerConfigError(`${field}.metadata`, init.metadata, 'a plain object');
  }
  return { id, url, weight, zone, priority, metadata: Object.freeze({ ...(init.metadata ?? {}) }) };
}

/**
 * The id of the backend whose URL `given` is (as written in the config, trailing slash and
 * default port allowed), for an error that was handed a URL where an id belongs.
 * @internal
 */
export function idOfUrl(
  backends: Iterable<{ readonly id: string; readonly url: string }>,
  given: string,
): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(given);
  } catch {
    return undefined;
  }
  const url = baseUrl(parsed);
  for (const b of backends) if (b.url === url) return b.id;
  return undefined;
}

/** A backend's URL as the pool keeps it: scheme, host and path, without trailing slashes. */
function baseUrl(parsed: URL): string {
  return `${parsed.protocol}//${parsed.host}${basePath(parsed)}`;
}

function basePath(parsed: URL): string {
  return parsed.pathname.replace(/\/+$/, '');
}

/**
 * Adds the hint `Did you mean "http://host:port"?` when the URL lacks only its scheme (a bare
 * `10.0.1.10:8080`, `localhost:8080`, `api.internal`), the commonest first mistake.
 */
function withScheme(raw: string, options: { cause?: unknown }): { cause?: unknown; hint?: string } {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) return options;
  try {
    const guess = new URL(`http://${raw}`);
    if (guess.host === '' || guess.username !== '' || guess.password !== '') return options;
    return {
      ...options,
      hint: `A backend URL needs its scheme: did you mean ${JSON.stringify(redactUrl(`http://${raw}`))}?`,
    };
  } catch {
    return options;
  }
}

function defaultPort(protocol: string): string {
  switch (protocol) {
    case 'https:':
    case 'wss:':
      return '443';
    case 'http:':
    case 'ws:':
      return '80';
    default:
      return '0';
  }
}
