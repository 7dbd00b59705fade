import '../disposable.js';
import { EventEmitter } from 'eventemitter3';
import { backgroundTimer, type Clock, type TimerHandle } from '../clock.js';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { HealthCheckTimeoutError } from '../errors/health-check-timeout-error.js';
import { PoolClosedError } from '../errors/pool-closed-error.js';
import { BackendPool } from '../pool/backend-pool.js';
import type { Random } from '../random.js';
import type { BackendView } from '../types.js';
import {
  checkClock,
  checkFunction,
  checkOneOf,
  checkOptions,
  checkRandom,
  checkString,
  MIN_INTERVAL_MS,
  optDuration,
  optInterval,
  optNumber,
} from '../validate.js';
import {
  describeError,
  HTTP_PROBE_KEYS,
  type HttpProbeOptions,
  httpProbe,
  normalizeProbeValue,
  type Probe,
  type ProbeResult,
} from './probes.js';

/**
 * What a checker is for:
 * - `readiness`: its results go to the pool and decide routing;
 * - `liveness`: it only emits events (restart a process, page someone); routing never changes.
 */
export type HealthCheckRole = 'readiness' | 'liveness';

/** The kind of probe a checker runs. */
export type HealthCheckType = 'http' | 'tcp' | 'custom';

/** Options of {@link HealthChecker}. The HTTP options apply when the checker builds the probe. */
export interface HealthCheckerOptions extends HttpProbeOptions {
  /**
   * The probe kind. `http` builds an {@link httpProbe} from the HTTP options. `tcp` needs
   * `probe: tcpProbe()` from `loadwise/node` (TCP needs `node:net`, which the core does not load).
   * `custom` runs `probe`.
   * @default the probe's own `probeType` when `probe` is given, else 'http'
   */
  type?: HealthCheckType;
  /**
   * The probe to run, for `tcp` and `custom` checks (or a prepared `httpProbe()`).
   * @default an httpProbe built from the HTTP options
   */
  probe?: Probe;
  /**
   * `readiness` reports to the pool; `liveness` only emits events.
   * @default 'readiness'
   */
  role?: HealthCheckRole;
  /**
   * The name this checker reports under. The pool counts consecutive results per name, so two
   * checkers watching one pool need different names (the default differs by role, type and path).
   * @default `${role}:${type}` plus `:${path}` for HTTP
   */
  name?: string;
  /**
   * Time between probes of a healthy backend, counted from the end of the previous probe (as
   * Envoy arms its interval timer after each response).
   * @default 5000
   */
  intervalMs?: number;
  /**
   * How long a probe may take; then it fails and its signal aborts. Must be shorter than
   * `intervalMs`, or probes would run back to back and a slow backend would never be judged.
   * @default 2000
   */
  timeoutMs?: number;
  /**
   * Interval while a backend's results disagree with its state, i.e. while it is going up or
   * down, so the verdict comes quickly (HAProxy `fastinter`).
   * @default intervalMs / 5
   */
  fastIntervalMs?: number;
  /**
   * Interval while a backend is unhealthy, so a recovered backend rejoins soon (HAProxy
   * `downinter`, Envoy `unhealthy_interval`).
   * @default intervalMs / 2
   */
  unhealthyIntervalMs?: number;
  /**
   * Consecutive passing probes that make an unhealthy backend healthy (Envoy and Kubernetes
   * readiness use 1-2; HAProxy `rise` defaults to 2).
   * @default 2
   */
  healthyThreshold?: number;
  /**
   * Consecutive failing probes that make a healthy backend unhealthy (HAProxy `fall` and the
   * Kubernetes `failureThreshold` default to 3).
   * @default 3
   */
  unhealthyThreshold?: number;
  /**
   * Random spread of every interval, as a fraction: each wait is the interval times a factor
   * drawn uniformly from [1 - jitter, 1 + jitter], and the first probe of each backend waits a
   * random share of `jitter × intervalMs`, so probes of many backends (and many clients) do not
   * fire together (HAProxy `spread-checks`, at most 50%).
   * @default 0.1
   */
  jitter?: number;
  /**
   * The state of a backend before its first probe. `healthy` (optimistic) keeps routing to it;
   * `unknown` marks it unhealthy in the pool until its first probe passes, and the first result
   * decides at once. With `unknown`, a pool whose backends are all new starts in panic mode, so
   * calls still spread over every backend until probes answer.
   * @default 'healthy'
   */
  initialState?: 'healthy' | 'unknown';
  /** Time source. @default the pool's clock */
  clock?: Clock;
  /** Random source for jitter. @default the pool's random */
  random?: Random;
}

/** The result of one probe of one backend. */
export interface HealthProbeResult {
  /** The backend's id. */
  readonly id: string;
  /** Whether the probe passed. */
  readonly ok: boolean;
  /** Why it passed or failed (`status 500`, `ECONNREFUSED`, a timeout). */
  readonly reason: string;
  /** The HTTP status, for HTTP probes that got an answer. */
  readonly status?: number;
  /** The error a failed probe threw, or the {@link HealthCheckTimeoutError}. */
  readonly error?: unknown;
  /** How long the probe took on the checker's clock, in ms. */
  readonly durationMs: number;
  /** Clock reading when the probe ended. */
  readonly at: number;
}

/** The checker's own view of one backend, from {@link HealthChecker.status}. */
export interface BackendHealth {
  readonly id: string;
  /** Healthy by this checker's thresholds (`undefined` before the first probe with `initialState: 'unknown'`). */
  readonly healthy: boolean | undefined;
  readonly consecutivePasses: number;
  readonly consecutiveFailures: number;
  /** Whether a probe is running now. */
  readonly probing: boolean;
  /** The latest probe result. */
  readonly last: HealthProbeResult | undefined;
}

/** Events of a {@link HealthChecker}. */
export interface HealthCheckerEvents {
  /** Every probe result. */
  probe: (e: HealthProbeResult & { backend: BackendView }) => void;
  /** A backend crossed a threshold in this checker's view. */
  change: (e: {
    backend: BackendView;
    healthy: boolean;
    previous: boolean | undefined;
    reason: string;
    role: HealthCheckRole;
  }) => void;
  /**
   * Every backend failed this checker's probe. `message` names the likely cause: a probe that
   * depends on something all backends share. A readiness checker leaves routing to the pool's
   * panic rule meanwhile.
   */
  'all-unhealthy': (e: {
    message: string;
    total: number;
    role: HealthCheckRole;
    /** Whether the pool routes under its panic rule now. */
    panic: boolean;
  }) => void;
  /** After `all-unhealthy`, a backend passed again. */
  recovered: (e: { healthy: number; total: number; role: HealthCheckRole }) => void;
}

const CHECKER_KEYS = [
  'type',
  'probe',
  'role',
  'name',
  'intervalMs',
  'timeoutMs',
  'fastIntervalMs',
  'unhealthyIntervalMs',
  'healthyThreshold',
  'unhealthyThreshold',
  'jitter',
  'initialState',
  'clock',
  'random',
  ...HTTP_PROBE_KEYS,
] as const;

interface Tracked {
  readonly id: string;
  readonly backend: BackendView;
  healthy: boolean | undefined;
  passes: number;
  failures: number;
  timer: TimerHandle | undefined;
  running: Promise<HealthProbeResult> | undefined;
  cancel: ((why: string) => void) | undefined;
  last: HealthProbeResult | undefined;
}

interface RunOutcome {
  result: HealthProbeResult;
  discard: boolean;
}

/**
 * Active health checking: probes every backend of a pool on a schedule and reports the results
 * to the pool, which applies the thresholds and the panic rule. Follows backends added to and
 * removed from the pool, and stops when the pool closes.
 *
 * @example
 * ```ts
 * const readiness = new HealthChecker(pool, {
 *   type: 'http',
 *   path: '/health/ready',
 *   intervalMs: 5000,
 *   timeoutMs: 2000,
 * }).start();
 * readiness.on('all-unhealthy', (e) => log.error(e.message));
 *
 * // TCP lives in loadwise/node:
 * const liveness = new HealthChecker(pool, { role: 'liveness', probe: tcpProbe() }).start();
 * ```
 */
export class HealthChecker extends EventEmitter<HealthCheckerEvents> {
  /** The name results are reported under. */
  readonly name: string;
  /** `readiness` or `liveness`. */
  readonly role: HealthCheckRole;
  /** The probe kind. */
  readonly type: HealthCheckType;

  readonly #pool: BackendPool;
  readonly #probe: Probe;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #fastIntervalMs: number;
  readonly #unhealthyIntervalMs: number;
  readonly #healthyThreshold: number;
  readonly #unhealthyThreshold: number;
  readonly #jitter: number;
  readonly #initialUnknown: boolean;

  readonly #tracked = new Map<string, Tracked>();
  #started = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #allDown = false;

  constructor(pool: BackendPool, options: HealthCheckerOptions = {}) {
    super();
    if (!(pool instanceof BackendPool)) {
      throw new LoadBalancerConfigError('pool', pool, 'a BackendPool');
    }
    if (pool.closed) throw new PoolClosedError();
    const o = checkOptions('HealthCheckerOptions', options, CHECKER_KEYS);
    this.#pool = pool;
    this.role =
      o.role === undefined ? 'readiness' : checkOneOf('role', o.role, ['readiness', 'liveness']);

    const httpKeys = HTTP_PROBE_KEYS.filter((k) => o[k] !== undefined);
    let type: HealthCheckType;
    if (o.probe !== undefined) {
      const probe = checkFunction<Probe>('probe', o.probe);
      if (httpKeys.length > 0) {
        throw new LoadBalancerConfigError(
          httpKeys[0]!,
          o[httpKeys[0]!],
          'no HTTP option next to `probe` (pass them to httpProbe() instead)',
        );
      }
      const own = probe.probeType;
      type =
        o.type === undefined
          ? own === 'http' || own === 'tcp'
            ? own
            : 'custom'
          : checkOneOf('type', o.type, ['http', 'tcp', 'custom']);
      this.#probe = probe;
    } else {
      type = o.type === undefined ? 'http' : checkOneOf('type', o.type, ['http', 'tcp', 'custom']);
      if (type === 'tcp') {
        throw new LoadBalancerConfigError(
          'probe',
          undefined,
          "a TCP probe: import { tcpProbe } from 'loadwise/node' and pass probe: tcpProbe() (TCP needs node:net, which the runtime-neutral core does not load)",
        );
      }
      if (type === 'custom') {
        throw new LoadBalancerConfigError('probe', undefined, 'a probe function for type "custom"');
      }
      const httpOptions: HttpProbeOptions = {};
      for (const k of httpKeys) (httpOptions as Record<string, unknown>)[k] = o[k];
      this.#probe = httpProbe(httpOptions);
    }
    this.type = type;
    const path = type === 'http' && o.probe === undefined ? `:${o.path ?? '/health'}` : '';
    this.name = o.name === undefined ? `${this.role}:${type}${path}` : checkString('name', o.name);

    this.#clock = o.clock === undefined ? pool.clock : checkClock('clock', o.clock);
    this.#random = o.random === undefined ? pool.random : checkRandom('random', o.random);
    const positive = { min: 0, minExclusive: true };
    this.#intervalMs = optInterval('intervalMs', o.intervalMs, 5000);
    this.#timeoutMs = optDuration('timeoutMs', o.timeoutMs, 2000, positive);
    if (this.#timeoutMs >= this.#intervalMs) {
      throw new LoadBalancerConfigError(
        'timeoutMs',
        this.#timeoutMs,
        `less than intervalMs (${this.#intervalMs}), so every probe ends before the next is due; shorten the timeout or lengthen the interval`,
      );
    }
    this.#fastIntervalMs = optInterval(
      'fastIntervalMs',
      o.fastIntervalMs,
      Math.max(this.#intervalMs / 5, MIN_INTERVAL_MS),
    );
    this.#unhealthyIntervalMs = optInterval(
      'unhealthyIntervalMs',
      o.unhealthyIntervalMs,
      Math.max(this.#intervalMs / 2, MIN_INTERVAL_MS),
    );
    const count = { min: 1, integer: true };
    this.#healthyThreshold = optNumber('healthyThreshold', o.healthyThreshold, 2, count);
    this.#unhealthyThreshold = optNumber('unhealthyThreshold', o.unhealthyThreshold, 3, count);
    this.#jitter = optNumber('jitter', o.jitter, 0.1, { min: 0, max: 0.5 });
    this.#initialUnknown =
      o.initialState !== undefined &&
      checkOneOf('initialState', o.initialState, ['healthy', 'unknown']) === 'unknown';

    for (const b of pool.backends()) this.#track(b);
    pool.on('added', this.#onAdded);
    pool.on('removed', this.#onRemoved);
    pool.on('close', this.#onPoolClose);
  }

  /** Whether the schedule is running. */
  get started(): boolean {
    return this.#started;
  }

  /** Whether `close()` was called (or the pool closed). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Starts probing every backend on the schedule. With `initialState: 'unknown'`, a readiness
   * checker first marks every backend it has not probed yet unhealthy. Idempotent.
   * @throws {PoolClosedError} after `close()`.
   */
  start(): this {
    if (this.#closed) throw new PoolClosedError('health checker');
    if (this.#started) return this;
    this.#started = true;
    for (const t of this.#tracked.values()) this.#begin(t);
    return this;
  }

  /**
   * Stops the schedule and aborts probes in flight (their results are dropped); `start()` resumes.
   * Backends keep the state they have in the pool.
   */
  stop(): void {
    this.#started = false;
    for (const t of this.#tracked.values()) this.#halt(t, 'checker stopped');
  }

  /**
   * Probes every backend now, outside the schedule, and resolves with the results once all are in.
   * A backend whose probe is already running is not probed twice: its running probe's result is
   * returned. While started, each backend's next scheduled probe counts from this one.
   * @throws {PoolClosedError} after `close()` (as a rejected promise).
   */
  async checkNow(): Promise<readonly HealthProbeResult[]> {
    if (this.#closed) throw new PoolClosedError('health checker');
    return Promise.all([...this.#tracked.values()].map((t) => this.#run(t)));
  }

  /** Resolves once no probe is running (probes started meanwhile are awaited too). */
  async whenIdle(): Promise<void> {
    for (;;) {
      const running = [...this.#tracked.values()].flatMap((t) =>
        t.running === undefined ? [] : [t.running],
      );
      if (running.length === 0) return;
      await Promise.allSettled(running);
    }
  }

  /** This checker's view of every backend it watches. */
  status(): readonly BackendHealth[] {
    return [...this.#tracked.values()].map((t) => ({
      id: t.id,
      healthy: t.healthy,
      consecutivePasses: t.passes,
      consecutiveFailures: t.failures,
      probing: t.running !== undefined,
      last: t.last,
    }));
  }

  /**
   * Stops for good: clears every timer, aborts probes in flight and stops following the pool.
   * Called by itself when the pool closes. Idempotent; resolves once running probes have settled.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    this.stop();
    this.#pool.off('added', this.#onAdded);
    this.#pool.off('removed', this.#onRemoved);
    this.#pool.off('close', this.#onPoolClose);
    const running = [...this.#tracked.values()].flatMap((t) =>
      t.running === undefined ? [] : [t.running],
    );
    this.#tracked.clear();
    this.#closing = Promise.allSettled(running).then(() => undefined);
    return this.#closing;
  }

  /** Same as {@link HealthChecker.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---------------------------------------------------------------- pool membership

  readonly #onAdded = ({ backend }: { backend: BackendView }): void => {
    const t = this.#track(backend);
    if (this.#started) this.#begin(t);
    this.#checkAll();
  };

  readonly #onRemoved = ({ backend }: { backend: BackendView }): void => {
    const t = this.#tracked.get(backend.id);
    if (t === undefined || t.backend !== backend) return;
    this.#halt(t, 'backend removed');
    this.#tracked.delete(backend.id);
    this.#checkAll();
  };

  readonly #onPoolClose = (): void => {
    void this.close();
  };

  #track(backend: BackendView): Tracked {
    const t: Tracked = {
      id: backend.id,
      backend,
      healthy: this.#initialUnknown ? undefined : true,
      passes: 0,
      failures: 0,
      timer: undefined,
      running: undefined,
      cancel: undefined,
      last: undefined,
    };
    this.#tracked.set(backend.id, t);
    return t;
  }

  /** First step for a backend once the checker runs: maybe mark it unknown, then schedule. */
  #begin(t: Tracked): void {
    if (
      t.healthy === undefined &&
      this.role === 'readiness' &&
      !this.#pool.closed &&
      this.#pool.get(t.id) === t.backend
    ) {
      this.#pool.setHealthy(t.id, false, `awaiting first probe (${this.name})`);
    }
    if (t.running === undefined)
      this.#schedule(t, this.#random() * this.#jitter * this.#intervalMs);
  }

  #halt(t: Tracked, why: string): void {
    if (t.timer !== undefined) this.#clock.clearTimeout(t.timer);
    t.timer = undefined;
    t.cancel?.(why);
  }

  // ---------------------------------------------------------------- schedule

  #schedule(t: Tracked, delayMs: number): void {
    if (t.timer !== undefined) this.#clock.clearTimeout(t.timer);
    t.timer = backgroundTimer(
      this.#clock,
      () => {
        t.timer = undefined;
        void this.#run(t);
      },
      delayMs,
    );
  }

  /** The wait before the next probe: fast while changing, slower when healthy, with jitter. */
  #nextDelay(t: Tracked): number {
    let base: number;
    if (t.healthy === undefined || (t.healthy ? t.failures > 0 : t.passes > 0)) {
      base = this.#fastIntervalMs;
    } else {
      base = t.healthy ? this.#intervalMs : this.#unhealthyIntervalMs;
    }
    return base * (1 + this.#jitter * (2 * this.#random() - 1));
  }

  // ---------------------------------------------------------------- probing

  /** Runs one probe of `t` unless one is running (then joins it); records and reschedules. */
  #run(t: Tracked): Promise<HealthProbeResult> {
    if (t.running !== undefined) return t.running;
    if (t.timer !== undefined) this.#clock.clearTimeout(t.timer);
    t.timer = undefined;
    const running = this.#execute(t).then(({ result, discard }) => {
      t.running = undefined;
      try {
        if (!discard && !this.#closed && this.#tracked.get(t.id) === t) this.#record(t, result);
      } finally {
        // Scheduled after the probe ended, so a probe never overlaps itself.
        if (this.#started && !this.#closed && this.#tracked.get(t.id) === t) {
          this.#schedule(t, this.#nextDelay(t));
        }
      }
      return result;
    });
    t.running = running;
    return running;
  }

  /** Runs the probe against the timeout; never rejects. */
  #execute(t: Tracked): Promise<RunOutcome> {
    const clock = this.#clock;
    const controller = new AbortController();
    const startedAt = clock.now();
    return new Promise<RunOutcome>((resolve) => {
      let done = false;
      let timeout: TimerHandle | undefined;
      const finish = (r: ProbeResult & { error?: unknown }, discard: boolean): void => {
        if (done) return;
        done = true;
        if (timeout !== undefined) clock.clearTimeout(timeout);
        t.cancel = undefined;
        const at = clock.now();
        const result: { -readonly [K in keyof HealthProbeResult]: HealthProbeResult[K] } = {
          id: t.id,
          ok: r.ok,
          reason: r.reason ?? (r.ok ? 'passed' : 'failed'),
          durationMs: at - startedAt,
          at,
        };
        if (r.status !== undefined) result.status = r.status;
        if (r.error !== undefined) result.error = r.error;
        resolve({ result, discard });
      };
      timeout = backgroundTimer(
        clock,
        () => {
          timeout = undefined;
          const error = new HealthCheckTimeoutError(t.id, this.#timeoutMs);
          // Settle first, so a probe that rejects on abort cannot claim the result.
          finish({ ok: false, reason: `timed out after ${this.#timeoutMs} ms`, error }, false);
          controller.abort(error);
        },
        this.#timeoutMs,
      );
      t.cancel = (why) => {
        finish({ ok: false, reason: `cancelled: ${why}` }, true);
        controller.abort(new PoolClosedError('health checker'));
      };
      let pending: Promise<unknown>;
      try {
        pending = Promise.resolve(this.#probe(t.backend, controller.signal));
      } catch (error) {
        pending = Promise.reject(error);
      }
      // A probe that settles after the timeout or a cancel changes nothing: `finish` ran already.
      pending.then(
        (value) => finish(normalizeProbeValue(value), false),
        (error: unknown) => finish({ ok: false, reason: describeError(error), error }, false),
      );
    });
  }

  /** Applies one result: counts, this checker's view, the pool report and events. */
  #record(t: Tracked, result: HealthProbeResult): void {
    const previous = t.healthy;
    if (result.ok) {
      t.passes++;
      t.failures = 0;
    } else {
      t.failures++;
      t.passes = 0;
    }
    t.last = result;
    let next = previous;
    if (previous === undefined) next = result.ok;
    else if (previous && !result.ok && t.failures >= this.#unhealthyThreshold) next = false;
    else if (!previous && result.ok && t.passes >= this.#healthyThreshold) next = true;
    t.healthy = next;

    const reason = result.ok
      ? `${t.passes} consecutive passing probe${t.passes === 1 ? '' : 's'} (${this.name})`
      : `${t.failures} consecutive failing probe${t.failures === 1 ? '' : 's'} (${this.name}): ${result.reason}`;
    // A closing pool refuses reports (PoolClosedError); the result is still emitted below.
    if (this.role === 'readiness' && !this.#pool.closed && this.#pool.get(t.id) === t.backend) {
      // The first result of an unknown backend decides at once; after that the thresholds apply.
      const first = previous === undefined;
      this.#pool.reportProbe(t.id, {
        ok: result.ok,
        source: this.name,
        healthyThreshold: first ? 1 : this.#healthyThreshold,
        unhealthyThreshold: first ? 1 : this.#unhealthyThreshold,
        reason,
      });
    }
    this.emit('probe', { ...result, backend: t.backend });
    if (next !== previous && next !== undefined) {
      this.emit('change', {
        backend: t.backend,
        healthy: next,
        previous,
        reason,
        role: this.role,
      });
      this.#checkAll();
    }
  }

  /** Emits `all-unhealthy` when every backend is down in this checker's view, `recovered` after. */
  #checkAll(): void {
    let healthy = 0;
    let unhealthy = 0;
    for (const t of this.#tracked.values()) {
      if (t.healthy === true) healthy++;
      else if (t.healthy === false) unhealthy++;
    }
    const total = this.#tracked.size;
    if (total > 0 && unhealthy === total) {
      if (this.#allDown) return;
      this.#allDown = true;
      this.emit('all-unhealthy', {
        message: this.#allDownMessage(total),
        total,
        role: this.role,
        panic: this.#pool.panic,
      });
    } else if (this.#allDown && healthy > 0) {
      this.#allDown = false;
      this.emit('recovered', { healthy, total, role: this.role });
    }
  }

  #allDownMessage(total: number): string {
    const what = total === 1 ? 'The only backend' : `All ${total} backends`;
    const routing =
      this.role === 'readiness'
        ? ' Meanwhile the pool keeps routing under its panic rule (minHealthy, panicThreshold) rather than failing every call.'
        : ' This is a liveness checker: routing is unchanged.';
    return (
      `${what} failed the "${this.name}" probe. When every backend fails at once the cause is ` +
      'rarely the backends themselves: the probe most likely depends on something they all ' +
      'share (a database, cache, DNS, an auth service) or is itself wrong (path, port, expected ' +
      'status, timeout). Make readiness probes check only the instance itself.' +
      routing
    );
  }
}
