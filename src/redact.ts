/**
 * The one place that renders a URL for people (error messages, events, logs, metric labels and
 * span attributes) without the credentials it may carry.
 * @internal
 */

const SCHEME = /^[a-zA-Z][a-zA-Z\d+.-]*:/;
/** A base for parsing scheme-relative input (`//user:pw@host/x`) when no scheme is given. */
const BASE = 'http://loadwise.invalid';

/**
 * `url` with any user name and password replaced by `***`. Where the input parses as a URL
 * (with or without a scheme), the URL parser decides what the credentials are and the parsed
 * URL is shown without them: that covers every spelling a parser accepts (`http:user:pw@h`,
 * `http:\\user:pw@h`, `http:/user:pw@h`, a password containing `@`). Where it does not parse,
 * the whole authority is hidden. A string without `@` has no credentials and is returned as is.
 */
export function redactUrl(url: string): string {
  if (!url.includes('@')) return url;
  const scheme = SCHEME.test(url);
  let parsed: URL | undefined;
  try {
    parsed = scheme ? new URL(url) : new URL(url, BASE);
  } catch {
    parsed = undefined;
  }
  if (parsed !== undefined) {
    if (parsed.username === '' && parsed.password === '') {
      // The parser found no credentials; an authority-like `x@y` before the path (a scheme the
      // parser treats as opaque, say) is still hidden.
      return scheme && /^[a-zA-Z][a-zA-Z\d+.-]*:[/\\]*[^/\\?#]*@/.test(url)
        ? hideAuthority(url)
        : url;
    }
    parsed.username = '';
    parsed.password = '';
    const shown = parsed.href.replace(/^([a-zA-Z][a-zA-Z\d+.-]*:\/\/)/, '$1***@');
    // Scheme-relative input is shown scheme-relative.
    return scheme ? shown : shown.slice('http:'.length);
  }
  return hideAuthority(url);
}

/**
 * Hides everything between the scheme (and its slashes) and the end of the authority; the
 * authority ends at the last `@` before the query, or else at the first `/`, `\`, `?` or `#`.
 */
function hideAuthority(url: string): string {
  const m = /^([a-zA-Z][a-zA-Z\d+.-]*:)?([/\\]*)/.exec(url)!;
  const start = m[0].length;
  const end = url.search(/[?#]/);
  const rest = end < 0 ? url.slice(start) : url.slice(start, end);
  const at = rest.lastIndexOf('@');
  const stop =
    at >= 0
      ? start + at + 1
      : start + (rest.search(/[/\\]/) < 0 ? rest.length : rest.search(/[/\\]/));
  return `${url.slice(0, start)}***${at >= 0 ? '@' : ''}${url.slice(stop)}`;
}
