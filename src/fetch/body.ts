/**
 * Tracks the body of a response so the call's lease is released exactly once, when the body is
 * consumed, cancelled or errors, or when nobody starts reading it in time.
 *
 * The response stays a real `Response` of the class the fetch implementation returned: its
 * prototype is swapped for a subclass-like object whose body methods (`text()`, `json()`, ...)
 * and `body` getter report to the tracker. That costs about a microsecond, where wrapping every
 * body in a new `ReadableStream` and `Response` costs tens of microseconds per call in Node 20.
 * A stream wrapper is only built when the caller asks for `response.body`, and reading counts
 * as started only when that wrapper is asked for data (a pull), never when the getter is touched.
 * @internal
 */
import { backgroundTimer, type Clock, type TimerHandle } from '../clock.js';

/** How a tracked body ended. */
export type BodyEnd = 'end' | 'cancel' | 'error' | 'unread';

/** Receives the end of a tracked body, once. */
export interface BodyListener {
  bodyEnded(end: BodyEnd, error?: unknown): void;
}

const CONSUMERS = ['arrayBuffer', 'blob', 'bytes', 'formData', 'json', 'text'] as const;

class Tracker implements TrackedBody {
  readonly response: Response;
  readonly #source: ReadableStream<Uint8Array>;
  readonly #listener: BodyListener;
  readonly #clock: Clock;
  #timer: TimerHandle | undefined;
  #done = false;
  #stream: ReadableStream<Uint8Array> | undefined;

  constructor(
    response: Response,
    source: ReadableStream<Uint8Array>,
    listener: BodyListener,
    clock: Clock,
    unreadMs: number,
  ) {
    this.response = response;
    this.#source = source;
    this.#listener = listener;
    this.#clock = clock;
    this.#timer = backgroundTimer(clock, () => this.#unread(), unreadMs);
  }

  #unread(): void {
    this.#timer = undefined;
    this.finish('unread');
  }

  /** The caller started to read: the unread timer no longer applies. */
  started(): void {
    if (this.#timer === undefined) return;
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  finish(end: BodyEnd, error?: unknown): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#timer !== undefined) {
      this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#listener.bodyEnded(end, error);
  }

  abandon(): void {
    if (!this.#source.locked) this.#source.cancel().catch(noop);
    this.finish('cancel');
  }

  consume<T>(promise: Promise<T>): Promise<T> {
    return promise.then(
      (value) => {
        this.finish('end');
        return value;
      },
      (error: unknown) => {
        this.finish('error', error);
        throw error;
      },
    );
  }

  stream(source: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
    this.#stream ??= wrapStream(source, this);
    return this.#stream;
  }
}

const kTracker = Symbol('loadwise.bodyTracker');
type Tracked = Response & { [kTracker]: Tracker };
const trackedProtos = new WeakMap<object, object>();

/** A prototype inheriting `proto` (a Response class's prototype) with tracked body methods. */
function trackedProto(proto: object): object {
  let tracked = trackedProtos.get(proto);
  if (tracked !== undefined) return tracked;
  tracked = Object.create(proto) as object;
  const bodyGetter = Object.getOwnPropertyDescriptor(proto, 'body')?.get;
  for (const name of CONSUMERS) {
    const original = (proto as Record<string, unknown>)[name];
    if (typeof original !== 'function') continue;
    Object.defineProperty(tracked, name, {
      configurable: true,
      writable: true,
      value: function (this: Tracked, ...args: unknown[]) {
        const tracker = this[kTracker];
        tracker.started();
        let result: Promise<unknown>;
        try {
          result = (original as (...a: unknown[]) => Promise<unknown>).apply(this, args);
        } catch (error) {
          tracker.finish('error', error);
          throw error;
        }
        return tracker.consume(result);
      },
    });
  }
  if (bodyGetter !== undefined) {
    Object.defineProperty(tracked, 'body', {
      configurable: true,
      get(this: Tracked) {
        const source = bodyGetter.call(this) as ReadableStream<Uint8Array> | null;
        if (source === null) return null;
        // Touching the getter is not reading: code that rebuilds the response around the body
        // (`new Response(res.body, res)`) and then drops it must still be released by the
        // unread timer. Reading starts when the wrapper is first asked for data.
        return this[kTracker].stream(source);
      },
    });
  }
  trackedProtos.set(proto, tracked);
  return tracked;
}

/** A tracked response and a way to give it up. */
export interface TrackedBody {
  /** The same response object, now tracked. */
  readonly response: Response;
  /**
   * Gives the response up (the call failed after all): cancels the body if nobody holds it and
   * ends the tracking as `cancel`, unless it already ended.
   */
  abandon(): void;
}

/**
 * Tracks `response`'s body; `listener` hears exactly once how it ended. A response without a
 * body ends at once.
 */
export function trackBody(
  response: Response,
  listener: BodyListener,
  clock: Clock,
  unreadMs: number,
): TrackedBody {
  const source = response.body;
  if (source === null) {
    listener.bodyEnded('end');
    return new Untracked(response);
  }
  const tracker = new Tracker(response, source, listener, clock, unreadMs);
  Object.defineProperty(response, kTracker, { value: tracker });
  Object.setPrototypeOf(response, trackedProto(Object.getPrototypeOf(response) as object));
  return tracker;
}

/** A response without a body: nothing to track, nothing to give up. */
class Untracked implements TrackedBody {
  readonly response: Response;
  constructor(response: Response) {
    this.response = response;
  }
  abandon(): void {}
}

function noop(): void {}

/** A pass-through stream that reads `source` only on demand and reports how it ended. */
function wrapStream(
  source: ReadableStream<Uint8Array>,
  tracker: Tracker,
): ReadableStream<Uint8Array> {
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (reader === undefined) {
          tracker.started();
          reader = source.getReader();
        }
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (error) {
          tracker.finish('error', error);
          controller.error(error);
          return;
        }
        if (chunk.done) {
          controller.close();
          tracker.finish('end');
        } else {
          controller.enqueue(chunk.value);
        }
      },
      async cancel(reason) {
        tracker.finish('cancel');
        await (reader ?? source).cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
