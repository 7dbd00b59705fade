/**
 * The two sides of a dispatched call: the caller's handler (either of undici's handler styles),
 * and the handler of one attempt on a backend's undici `Pool`.
 * @internal
 */
import type { Buffer } from 'node:buffer';
import type { Dispatcher } from 'undici';

type IncomingHttpHeaders = Record<string, string | string[] | undefined>;

/** The caller's handler, whichever of undici's two handler styles it implements. */
export interface Downstream {
  /** The request starts; `abort` lets the caller give up on the whole call. */
  start(abort: (reason?: Error) => void): void;
  /** Response headers; `false` asks for a pause until `resume` is called. */
  headers(status: number, raw: Buffer[], statusText: string, resume: () => void): boolean;
  /** A body chunk; `false` asks for a pause until `resume` is called. */
  data(chunk: Buffer): boolean;
  complete(rawTrailers: string[] | Buffer[] | null): void;
  error(error: Error): void;
}

/**
 * Wraps the caller's handler. undici's own APIs (`request`, `stream`, `fetch`) pass handlers of
 * the callback style (`onConnect`, `onHeaders`, ...); interceptors (`compose()`) pass handlers of
 * the controller style (`onRequestStart`, `onResponseStart`, ...).
 */
export function toDownstream(handler: Dispatcher.DispatchHandler): Downstream {
  return typeof handler.onRequestStart === 'function' ||
    typeof handler.onResponseStart === 'function'
    ? new ControllerDownstream(handler)
    : new CallbackDownstream(handler);
}

class CallbackDownstream implements Downstream {
  readonly #h: Dispatcher.DispatchHandler;
  constructor(handler: Dispatcher.DispatchHandler) {
    this.#h = handler;
  }
  start(abort: (reason?: Error) => void): void {
    this.#h.onConnect?.(abort);
  }
  headers(status: number, raw: Buffer[], statusText: string, resume: () => void): boolean {
    this.#h.onResponseStarted?.();
    return this.#h.onHeaders?.(status, raw, resume, statusText) !== false;
  }
  data(chunk: Buffer): boolean {
    return this.#h.onData?.(chunk) !== false;
  }
  complete(rawTrailers: string[] | Buffer[] | null): void {
    this.#h.onComplete?.(rawTrailers as string[] | null);
  }
  error(error: Error): void {
    if (typeof this.#h.onError !== 'function') throw error;
    this.#h.onError(error);
  }
}

/** undici's `DispatchController`, as the controller style expects it. */
class Controller implements Dispatcher.DispatchController {
  #aborted = false;
  #paused = false;
  #reason: Error | null = null;
  #abort: ((reason?: Error) => void) | undefined;
  #resume: (() => void) | undefined;
  rawHeaders: Buffer[] | null = null;
  rawTrailers: Buffer[] | null = null;

  get aborted(): boolean {
    return this.#aborted;
  }
  get paused(): boolean {
    return this.#paused;
  }
  get reason(): Error | null {
    return this.#reason;
  }
  abort(reason: Error): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#abort?.(reason);
  }
  pause(): void {
    this.#paused = true;
  }
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#resume?.();
  }
  /** @internal */
  bind(abort: (reason?: Error) => void): void {
    this.#abort = abort;
  }
  /** @internal */
  bindResume(resume: () => void): void {
    this.#resume = resume;
  }
}

class ControllerDownstream implements Downstream {
  readonly #h: Dispatcher.DispatchHandler;
  readonly #controller = new Controller();
  constructor(handler: Dispatcher.DispatchHandler) {
    this.#h = handler;
  }
  start(abort: (reason?: Error) => void): void {
    this.#controller.bind(abort);
    this.#h.onRequestStart?.(this.#controller, {});
  }
  headers(status: number, raw: Buffer[], statusText: string, resume: () => void): boolean {
    const c = this.#controller;
    c.bindResume(resume);
    c.rawHeaders = raw;
    this.#h.onResponseStart?.(c, status, parseHeaders(raw), statusText);
    return !c.paused;
  }
  data(chunk: Buffer): boolean {
    const c = this.#controller;
    this.#h.onResponseData?.(c, chunk);
    return !c.paused;
  }
  complete(rawTrailers: string[] | Buffer[] | null): void {
    const c = this.#controller;
    c.rawTrailers = rawTrailers as Buffer[] | null;
    this.#h.onResponseEnd?.(c, rawTrailers === null ? {} : parseHeaders(rawTrailers));
  }
  error(error: Error): void {
    if (typeof this.#h.onResponseError !== 'function') throw error;
    this.#h.onResponseError(this.#controller, error);
  }
}

/** Raw headers (name, value, name, value, ...) as an object: lower-case names, repeats as arrays. */
export function parseHeaders(raw: readonly (Buffer | string)[]): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1').toLowerCase();
    const value = raw[i + 1]!.toString('latin1');
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [prev, value];
  }
  return out;
}

/** A header of raw response headers, case-insensitively; undefined when absent. */
export function rawHeader(raw: readonly Buffer[], name: string): string | undefined {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === name.length && n.toString('latin1').toLowerCase() === name) {
      return raw[i + 1]!.toString('latin1');
    }
  }
  return undefined;
}
