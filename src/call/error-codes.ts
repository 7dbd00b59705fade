/**
 * Error codes shared by every transport's classifier: which ones are this process's own failures.
 * @internal
 */

/**
 * Errors of this process, not of the backend: local resources ran out (errno(3): too many open
 * files in the process or the system, no free local port or address, no buffer space, no
 * memory), or the HTTP implementation refused the request's own arguments before sending.
 */
export const LOCAL_CODES: ReadonlySet<string> = new Set([
  'EMFILE',
  'ENFILE',
  'EADDRNOTAVAIL',
  'ENOBUFS',
  'ENOMEM',
  'UND_ERR_INVALID_ARG',
  'UND_ERR_NOT_SUPPORTED',
  'ERR_INVALID_ARG_TYPE',
  'ERR_INVALID_ARG_VALUE',
  'ERR_INVALID_HTTP_TOKEN',
  'ERR_INVALID_CHAR',
  'ERR_HTTP_INVALID_HEADER_VALUE',
  'ERR_UNESCAPED_CHARACTERS',
]);

/** The first `code` string on an error, its cause chain or an AggregateError's first error. */
export function errorCode(error: unknown): string | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 5 && typeof e === 'object' && e !== null; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const errors = (e as { errors?: unknown }).errors;
    if (Array.isArray(errors) && errors.length > 0) {
      const inner = errorCode(errors[0]);
      if (inner !== undefined) return inner;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The error code of a local failure (`EMFILE`, ...), for messages; undefined when none. */
export function localCode(error: unknown): string | undefined {
  const code = errorCode(error);
  return code !== undefined && LOCAL_CODES.has(code) ? code : undefined;
}
