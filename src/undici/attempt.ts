/**
 * One attempt of a dispatched call on a backend's undici `Pool`: resolves at the response
 * headers, holds back what arrives before the call loop decides to deliver it, then streams the
 * rest to the caller's handler with undici's back-pressure.
 * @internal
 */
import type { Buffer } from 'node:buffer';
import type { Dispatcher } from 'undici';
import type { Downstream } from './handlers.js';

/** How a delivered response ended. */
export type AttemptEnd = 'end' | 'error';

export class Attempt implements Dispatcher.DispatchHandler {
  status = 0;
  statusText = '';
  raw: Buffer[] = [];

  /** Hears the response headers (this attempt), or how the attempt failed before them. */
  readonly #ok: (attempt: Attempt) => void;
  readonly #fail: (error: unknown) => void;
  #abort: ((reason?: Error) => void) | undefined;
  #pendingAbort: Error | undefined;
  #gotHeaders = false;
  #done = false;

  // Held back until delivery.
  #chunks: Buffer[] | undefined;
  #trailers: string[] | Buffer[] | null | undefined;
  #failure: Error | undefined;

  // After delivery.
  #down: Downstream | undefined;
  #onEnd: ((end: AttemptEnd, error?: Error) => void) | undefined;
  #innerResume: (() => void) | undefined;
  #innerPaused = false;
  #downPaused = false;

  constructor(ok: (attempt: Attempt) => void, fail: (error: unknown) => void) {
    this.#ok = ok;
    this.#fail = fail;
  }

  /** The call's token aborted (a timeout, a superseded hedge, the caller, the deadline). */
  onCancel(reason: unknown): void {
    this.abort(reason);
  }

  /** Aborts the attempt (a superseded hedge, a timeout, a discarded response). */
  abort(reason: unknown): void {
    if (this.#done) return;
    const error = reason instanceof Error ? reason : superseded();
    if (this.#abort === undefined) this.#pendingAbort = error;
    else this.#abort(error);
  }

  /** Hands the response to the caller's handler; `onEnd` hears how its body ended. */
  deliver(down: Downstream, onEnd: (end: AttemptEnd, error?: Error) => void): void {
    this.#down = down;
    this.#onEnd = onEnd;
    let go: boolean;
    try {
      go = down.headers(this.status, this.raw, this.statusText, () => this.#resumeDown());
    } catch (error) {
      this.#handlerThrew(error);
      return;
    }
    if (!go) {
      this.#downPaused = true;
      return;
    }
    this.#flush();
  }

  /**
   * The caller's handler threw: as undici does, the request is aborted and the handler hears the
   * error (interceptors such as `retry` throw on purpose to be called back this way).
   */
  #handlerThrew(thrown: unknown): void {
    const error = thrown instanceof Error ? thrown : new Error(String(thrown));
    const wasDone = this.#done;
    this.#done = true;
    this.#chunks = undefined;
    if (!wasDone) this.#abort?.(error);
    if (this.#ended) return;
    this.#ended = true;
    this.#down!.error(error);
    this.#onEnd!('error', error);
  }

  #ended = false;

  /** Tells the caller's handler the body ended (once), and the call how. */
  #end(error: Error | undefined, trailers: string[] | Buffer[] | null): void {
    if (this.#ended) return;
    try {
      if (error === undefined) this.#down!.complete(trailers);
      else this.#down!.error(error);
    } catch (thrown) {
      if (error === undefined) {
        this.#handlerThrew(thrown);
        return;
      }
      throw thrown;
    }
    this.#ended = true;
    if (error === undefined) this.#onEnd!('end');
    else this.#onEnd!('error', error);
  }

  // ---------------------------------------------------------------- undici's callbacks

  onConnect(abort: (reason?: Error) => void): void {
    this.#abort = abort;
    if (this.#pendingAbort !== undefined) abort(this.#pendingAbort);
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx informational responses come before the real one.
    if (status < 200) return true;
    this.status = status;
    this.raw = raw;
    this.statusText = statusText;
    this.#innerResume = resume;
    this.#gotHeaders = true;
    this.#ok(this);
    return true;
  }

  onData(chunk: Buffer): boolean {
    const down = this.#down;
    if (down === undefined || this.#downPaused || this.#chunks !== undefined) {
      if (this.#chunks === undefined) this.#chunks = [chunk];
      else this.#chunks.push(chunk);
      if (down === undefined) return true;
      this.#innerPaused = true;
      return false;
    }
    let go: boolean;
    try {
      go = down.data(chunk);
    } catch (error) {
      this.#handlerThrew(error);
      return false;
    }
    if (go) return true;
    this.#downPaused = true;
    this.#innerPaused = true;
    return false;
  }

  onComplete(trailers: string[] | Buffer[] | null): void {
    this.#done = true;
    if (this.#down === undefined || this.#downPaused || this.#chunks !== undefined) {
      this.#trailers = trailers;
      return;
    }
    this.#end(undefined, trailers);
  }

  onError(error: Error): void {
    this.#done = true;
    if (!this.#gotHeaders) {
      this.#fail(error);
      return;
    }
    if (this.#down === undefined) {
      this.#failure = error;
      return;
    }
    this.#chunks = undefined;
    this.#end(error, null);
  }

  // ---------------------------------------------------------------- after delivery

  #resumeDown(): void {
    if (!this.#downPaused) return;
    this.#downPaused = false;
    this.#flush();
  }

  /** Passes on what was held back, then lets undici go on. */
  #flush(): void {
    const down = this.#down!;
    const chunks = this.#chunks;
    if (chunks !== undefined) {
      while (chunks.length > 0) {
        const chunk = chunks.shift()!;
        let go: boolean;
        try {
          go = down.data(chunk);
        } catch (error) {
          this.#handlerThrew(error);
          return;
        }
        if (!go) {
          this.#downPaused = true;
          return;
        }
      }
      this.#chunks = undefined;
    }
    if (this.#failure !== undefined) {
      this.#end(this.#failure, null);
    } else if (this.#trailers !== undefined) {
      this.#end(undefined, this.#trailers);
    } else if (this.#innerPaused) {
      this.#innerPaused = false;
      this.#innerResume?.();
    }
  }
}

function superseded(): Error {
  return Object.assign(new Error('Another attempt of the same call answered first'), {
    code: 'LB_SUPERSEDED',
  });
}
