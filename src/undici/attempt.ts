/**
 * One attempt of a dispatched call on a backend's undici `Pool`: reports the response headers to
 * the call loop, then streams the body to the caller's handler with undici's back-pressure.
 *
 * When the call loop delivers the response while its headers are being reported (a call that
 * answers at once), the attempt passes undici's callbacks straight through: the caller's handler
 * gets undici's own `resume`, and its answers go back to undici as they are. Only a response
 * delivered later (after a hedge race, a retry's backoff) is held back and replayed.
 * @internal
 */
import type { Buffer } from 'node:buffer';
import type { Dispatcher } from 'undici';
import type { AttemptListener } from '../call/call.js';
import { type Downstream, rawHeader } from './handlers.js';

/** How a delivered response ended. */
export type AttemptEnd = 'end' | 'error';

/** Hears how the body of a delivered response ended, once. */
export interface DeliveryOwner {
  bodyEnded(end: AttemptEnd, error?: Error): void;
}

const NO_HEADERS: Buffer[] = [];

export class Attempt implements Dispatcher.DispatchHandler {
  status = 0;
  statusText = '';
  raw: Buffer[] = NO_HEADERS;

  /** Hears the response headers (this attempt), or how the attempt failed before them. */
  readonly #listener: AttemptListener<Attempt>;
  #abort: ((reason?: Error) => void) | undefined = undefined;
  #pendingAbort: Error | undefined = undefined;
  #gotHeaders = false;
  #done = false;
  #ended = false;
  /** Set while the headers are being reported to the call loop. */
  #inHeaders = false;
  /** What `onHeaders` answers undici (a caller's handler that asked for a pause: false). */
  #headersGo = true;
  /** Delivered while the headers were reported: undici's callbacks go straight through. */
  #through = false;

  /** What a response delivered late needs (made only then: most responses pass through). */
  #late: Late | undefined = undefined;

  // After delivery.
  #down: Downstream | undefined = undefined;
  #owner: DeliveryOwner | undefined = undefined;
  #innerResume: (() => void) | undefined = undefined;

  constructor(listener: AttemptListener<Attempt>) {
    this.#listener = listener;
  }

  /** A response header by name (case-insensitive), as `Headers.get` reads one. */
  get(name: string): string | undefined {
    return rawHeader(this.raw, name);
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

  /** Hands the response to the caller's handler; `owner` hears how its body ended. */
  deliver(down: Downstream, owner: DeliveryOwner): void {
    this.#down = down;
    this.#owner = owner;
    if (this.#inHeaders) {
      // Nothing of the body has arrived yet: from here on, undici talks to the caller's handler.
      this.#through = true;
      let go: boolean;
      try {
        go = down.headers(this.status, this.raw, this.statusText, this.#innerResume!);
      } catch (error) {
        this.#handlerThrew(error);
        return;
      }
      if (!go) this.#headersGo = false;
      return;
    }
    const late = this.#lateState();
    let go: boolean;
    try {
      go = down.headers(this.status, this.raw, this.statusText, () => this.#resumeDown());
    } catch (error) {
      this.#handlerThrew(error);
      return;
    }
    if (!go) {
      late.downPaused = true;
      return;
    }
    this.#flush();
  }

  #lateState(): Late {
    this.#late ??= {
      chunks: undefined,
      trailers: undefined,
      failure: undefined,
      innerPaused: false,
      downPaused: false,
    };
    return this.#late;
  }

  /**
   * The caller's handler threw: as undici does, the request is aborted and the handler hears the
   * error (interceptors such as `retry` throw on purpose to be called back this way).
   */
  #handlerThrew(thrown: unknown): void {
    const error = thrown instanceof Error ? thrown : new Error(String(thrown));
    const wasDone = this.#done;
    this.#done = true;
    if (this.#late !== undefined) this.#late.chunks = undefined;
    if (!wasDone) this.#abort?.(error);
    if (this.#ended) return;
    this.#ended = true;
    this.#down!.error(error);
    this.#owner!.bodyEnded('error', error);
  }

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
    if (error === undefined) this.#owner!.bodyEnded('end');
    else this.#owner!.bodyEnded('error', error);
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
    this.#inHeaders = true;
    try {
      this.#listener.responded(this);
    } finally {
      this.#inHeaders = false;
    }
    return this.#headersGo;
  }

  onData(chunk: Buffer): boolean {
    const down = this.#down;
    if (this.#through) {
      try {
        return down!.data(chunk);
      } catch (error) {
        this.#handlerThrew(error);
        return false;
      }
    }
    const late = this.#lateState();
    if (down === undefined || late.downPaused || late.chunks !== undefined) {
      if (late.chunks === undefined) late.chunks = [chunk];
      else late.chunks.push(chunk);
      if (down === undefined) return true;
      late.innerPaused = true;
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
    late.downPaused = true;
    late.innerPaused = true;
    return false;
  }

  onComplete(trailers: string[] | Buffer[] | null): void {
    this.#done = true;
    const late = this.#through ? undefined : this.#lateState();
    if (
      late !== undefined &&
      (this.#down === undefined || late.downPaused || late.chunks !== undefined)
    ) {
      late.trailers = trailers;
      return;
    }
    this.#end(undefined, trailers);
  }

  onError(error: Error): void {
    this.#done = true;
    if (!this.#gotHeaders) {
      this.#listener.failed(error);
      return;
    }
    if (this.#down === undefined) {
      this.#lateState().failure = error;
      return;
    }
    if (this.#late !== undefined) this.#late.chunks = undefined;
    this.#end(error, null);
  }

  // ---------------------------------------------------------------- after a late delivery

  #resumeDown(): void {
    const late = this.#late!;
    if (!late.downPaused) return;
    late.downPaused = false;
    this.#flush();
  }

  /** Passes on what was held back, then lets undici go on. */
  #flush(): void {
    const down = this.#down!;
    const late = this.#late!;
    const chunks = late.chunks;
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
          late.downPaused = true;
          return;
        }
      }
      late.chunks = undefined;
    }
    if (late.failure !== undefined) {
      this.#end(late.failure, null);
    } else if (late.trailers !== undefined) {
      this.#end(undefined, late.trailers);
    } else if (late.innerPaused) {
      late.innerPaused = false;
      this.#innerResume?.();
    }
  }
}

/** What is held back for a response delivered after its headers were reported. */
interface Late {
  chunks: Buffer[] | undefined;
  trailers: string[] | Buffer[] | null | undefined;
  failure: Error | undefined;
  /** undici was asked to pause (its data is held back here). */
  innerPaused: boolean;
  /** The caller's handler asked for a pause. */
  downPaused: boolean;
}

function superseded(): Error {
  return Object.assign(new Error('Another attempt of the same call answered first'), {
    code: 'LB_SUPERSEDED',
  });
}
