import { LoadBalancerConfigError } from '../errors/config-error.js';
import {
  checkBoolean,
  checkDuration,
  checkFunction,
  checkInterval,
  checkNumber,
  checkOneOf,
  checkOptions,
  checkString,
  isPlainObject,
  optDuration,
  optNumber,
} from '../validate.js';
import type {
  AlgorithmCandidate,
  BackendPhase,
  ClientStalls,
  KeySpace,
  LatencyModel,
  Scenario,
  SimulatedBackend,
  SimulatedHealthCheck,
  SimulationPoolOptions,
} from './types.js';

/** A phase with its defaults filled in. @internal */
export interface CheckedPhase {
  readonly from: number;
  readonly to: number;
  readonly latency: LatencyModel | undefined;
  readonly concurrency: number | undefined;
  readonly errorRate: number | undefined;
  readonly errorLatency: LatencyModel | undefined;
  readonly down: boolean | undefined;
  readonly label: string | undefined;
}

/** A backend with its defaults filled in. @internal */
export interface CheckedBackend {
  readonly id: string;
  readonly weight: number;
  readonly zone: string | undefined;
  readonly latency: LatencyModel;
  readonly concurrency: number;
  readonly slowdownPerInFlight: number;
  readonly errorRate: number;
  readonly errorLatency: LatencyModel | undefined;
  readonly phases: readonly CheckedPhase[];
  readonly joinAt: number;
  readonly leaveAt: number;
}

/** A scenario with its defaults filled in. @internal */
export interface CheckedScenario {
  readonly name: string;
  readonly description: string;
  readonly backends: readonly CheckedBackend[];
  /** Open-loop arrival rate per second (0 with `clients`). */
  readonly rate: number;
  readonly arrivals: 'poisson' | 'uniform';
  /** Closed-loop clients (0 for an open loop). */
  readonly clients: number;
  readonly clientStalls: ClientStalls | undefined;
  readonly durationMs: number;
  readonly requests: number;
  readonly deadlineMs: number;
  readonly cancelAtDeadline: boolean;
  readonly keys: { readonly count: number; readonly zipf: number } | undefined;
  readonly healthCheck: Required<SimulatedHealthCheck> | undefined;
  readonly pool: SimulationPoolOptions;
  readonly focus: string | undefined;
  readonly seed: number;
}

const SCENARIO_KEYS = [
  'name',
  'description',
  'backends',
  'rate',
  'arrivals',
  'clients',
  'clientStalls',
  'durationMs',
  'requests',
  'deadlineMs',
  'cancelAtDeadline',
  'keys',
  'healthCheck',
  'pool',
  'focus',
  'seed',
];
const BACKEND_KEYS = [
  'id',
  'weight',
  'zone',
  'latency',
  'concurrency',
  'slowdownPerInFlight',
  'errorRate',
  'errorLatency',
  'phases',
  'joinAt',
  'leaveAt',
];
const PHASE_KEYS = [
  'from',
  'to',
  'latency',
  'concurrency',
  'errorRate',
  'errorLatency',
  'down',
  'label',
];
const PROPORTION = { min: 0, max: 1 };
const TIME = { min: 0 };

/**
 * Validates a scenario and fills in its defaults.
 * @throws {LoadBalancerConfigError} naming the first invalid field.
 * @internal
 */
export function checkScenario(scenario: Scenario): CheckedScenario {
  if (!isPlainObject(scenario)) {
    throw new LoadBalancerConfigError('scenario', scenario, 'a Scenario object');
  }
  const s = checkOptions('scenario', scenario, SCENARIO_KEYS);
  const name = checkString('scenario.name', s.name);
  const description =
    s.description === undefined
      ? ''
      : checkString('scenario.description', s.description, { nonEmpty: false });
  if (!Array.isArray(s.backends) || s.backends.length === 0) {
    throw new LoadBalancerConfigError(
      'scenario.backends',
      s.backends,
      'a non-empty array of simulated backends',
    );
  }
  const backends = s.backends.map((b, i) => checkBackend(b, `scenario.backends[${i}]`));
  const ids = new Set<string>();
  for (const [i, b] of backends.entries()) {
    if (ids.has(b.id)) {
      throw new LoadBalancerConfigError(`scenario.backends[${i}].id`, b.id, 'a unique backend id');
    }
    ids.add(b.id);
  }
  if (!backends.some((b) => b.joinAt === 0)) {
    throw new LoadBalancerConfigError(
      'scenario.backends',
      'every backend joins late',
      'at least one backend present from the start (joinAt 0)',
    );
  }
  const clients =
    s.clients === undefined
      ? 0
      : checkNumber('scenario.clients', s.clients, { min: 1, max: 1_000_000, integer: true });
  if (clients > 0 && s.rate !== undefined) {
    throw new LoadBalancerConfigError(
      'scenario.rate',
      s.rate,
      "no rate with `clients` (a closed loop sends each client's next call when its last ends)",
    );
  }
  const rate =
    clients > 0 ? 0 : checkNumber('scenario.rate', s.rate, { min: 0, minExclusive: true });
  const arrivals =
    s.arrivals === undefined
      ? 'poisson'
      : checkOneOf('scenario.arrivals', s.arrivals, ['poisson', 'uniform'] as const);
  if (s.durationMs === undefined && s.requests === undefined) {
    throw new LoadBalancerConfigError(
      'scenario.durationMs',
      undefined,
      'a duration in ms, or a number of `requests` (at least one of the two)',
    );
  }
  const clientStalls = s.clientStalls === undefined ? undefined : checkStalls(s.clientStalls);
  const durationMs = optDuration('scenario.durationMs', s.durationMs, Number.POSITIVE_INFINITY, {
    min: 0,
    minExclusive: true,
  });
  const requests = optNumber('scenario.requests', s.requests, Number.POSITIVE_INFINITY, {
    min: 1,
    integer: true,
  });
  const deadlineMs = optDuration('scenario.deadlineMs', s.deadlineMs, 1000, {
    min: 0,
    minExclusive: true,
  });
  const cancelAtDeadline =
    s.cancelAtDeadline === undefined
      ? true
      : checkBoolean('scenario.cancelAtDeadline', s.cancelAtDeadline);
  const keys = s.keys === undefined ? undefined : checkKeys(s.keys);
  const healthCheck = s.healthCheck === undefined ? undefined : checkHealth(s.healthCheck);
  const pool = checkPoolOptions('scenario.pool', s.pool);
  const focus = s.focus === undefined ? undefined : checkString('scenario.focus', s.focus);
  if (focus !== undefined && !ids.has(focus)) {
    throw new LoadBalancerConfigError(
      'scenario.focus',
      focus,
      `one of the backend ids (${[...ids].join(', ')})`,
    );
  }
  const seed = optNumber('scenario.seed', s.seed, 1, { integer: true });
  return {
    name,
    description,
    backends,
    rate,
    arrivals,
    clients,
    clientStalls,
    durationMs,
    requests,
    deadlineMs,
    cancelAtDeadline,
    keys,
    healthCheck,
    pool,
    focus,
    seed,
  };
}

function checkBackend(value: unknown, field: string): CheckedBackend {
  if (!isPlainObject(value)) throw new LoadBalancerConfigError(field, value, 'a SimulatedBackend');
  const b = checkOptions(field, value as unknown as SimulatedBackend, BACKEND_KEYS);
  const id = checkString(`${field}.id`, b.id);
  const phasesIn = b.phases ?? [];
  if (!Array.isArray(phasesIn)) {
    throw new LoadBalancerConfigError(`${field}.phases`, phasesIn, 'an array of phases');
  }
  const joinAt = optDuration(`${field}.joinAt`, b.joinAt, 0, TIME);
  const leaveAt = optDuration(`${field}.leaveAt`, b.leaveAt, Number.POSITIVE_INFINITY, TIME);
  if (leaveAt <= joinAt) {
    throw new LoadBalancerConfigError(
      `${field}.leaveAt`,
      leaveAt,
      `a time after joinAt (${joinAt})`,
    );
  }
  return {
    id,
    weight: optNumber(`${field}.weight`, b.weight, 1, { min: 0, minExclusive: true }),
    zone: b.zone === undefined ? undefined : checkString(`${field}.zone`, b.zone),
    latency: checkLatency(b.latency, `${field}.latency`),
    concurrency:
      checkConcurrency(b.concurrency, `${field}.concurrency`) ?? Number.POSITIVE_INFINITY,
    slowdownPerInFlight: optNumber(`${field}.slowdownPerInFlight`, b.slowdownPerInFlight, 0, {
      min: 0,
    }),
    errorRate: optNumber(`${field}.errorRate`, b.errorRate, 0, PROPORTION),
    errorLatency:
      b.errorLatency === undefined
        ? undefined
        : checkLatency(b.errorLatency, `${field}.errorLatency`),
    phases: phasesIn.map((p, i) => checkPhase(p, `${field}.phases[${i}]`)),
    joinAt,
    leaveAt,
  };
}

/** A number of workers: an integer >= 1 or `Infinity`; `undefined` when not given. */
function checkConcurrency(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (value === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
  return checkNumber(field, value, { min: 1, integer: true });
}

function checkPhase(value: unknown, field: string): CheckedPhase {
  if (!isPlainObject(value)) throw new LoadBalancerConfigError(field, value, 'a BackendPhase');
  const p = checkOptions(field, value as unknown as BackendPhase, PHASE_KEYS);
  const from = checkDuration(`${field}.from`, p.from, TIME);
  const to = optDuration(`${field}.to`, p.to, Number.POSITIVE_INFINITY, TIME);
  if (to <= from)
    throw new LoadBalancerConfigError(`${field}.to`, to, `a time after from (${from})`);
  return {
    from,
    to,
    latency: p.latency === undefined ? undefined : checkLatency(p.latency, `${field}.latency`),
    concurrency: checkConcurrency(p.concurrency, `${field}.concurrency`),
    errorRate:
      p.errorRate === undefined
        ? undefined
        : checkNumber(`${field}.errorRate`, p.errorRate, PROPORTION),
    errorLatency:
      p.errorLatency === undefined
        ? undefined
        : checkLatency(p.errorLatency, `${field}.errorLatency`),
    down: p.down === undefined ? undefined : checkBoolean(`${field}.down`, p.down),
    label: p.label === undefined ? undefined : checkString(`${field}.label`, p.label),
  };
}

const LATENCY_KEYS: Record<string, readonly string[]> = {
  constant: ['kind', 'ms'],
  normal: ['kind', 'mean', 'sd', 'min'],
  lognormal: ['kind', 'median', 'sigma', 'max'],
  pareto: ['kind', 'min', 'alpha', 'max'],
  exponential: ['kind', 'mean', 'max'],
};

/** Validates a latency model. @internal */
export function checkLatency(value: unknown, field: string): LatencyModel {
  if (typeof value === 'number') return checkNumber(field, value, TIME);
  if (!isPlainObject(value)) {
    throw new LoadBalancerConfigError(
      field,
      value,
      "a number of ms or { kind: 'constant' | 'normal' | 'lognormal' | 'pareto' | 'exponential', ... }",
    );
  }
  const kind = checkOneOf(`${field}.kind`, value['kind'], Object.keys(LATENCY_KEYS));
  const m = checkOptions(field, value, LATENCY_KEYS[kind]!);
  const positive = { min: 0, minExclusive: true };
  const optMax = (): void => {
    if (m['max'] !== undefined) checkNumber(`${field}.max`, m['max'], TIME);
  };
  switch (kind) {
    case 'constant':
      checkNumber(`${field}.ms`, m['ms'], TIME);
      break;
    case 'normal':
      checkNumber(`${field}.mean`, m['mean'], TIME);
      checkNumber(`${field}.sd`, m['sd'], TIME);
      if (m['min'] !== undefined) checkNumber(`${field}.min`, m['min'], TIME);
      break;
    case 'lognormal':
      checkNumber(`${field}.median`, m['median'], positive);
      checkNumber(`${field}.sigma`, m['sigma'], TIME);
      optMax();
      break;
    case 'pareto':
      checkNumber(`${field}.min`, m['min'], positive);
      checkNumber(`${field}.alpha`, m['alpha'], positive);
      optMax();
      break;
    case 'exponential':
      checkNumber(`${field}.mean`, m['mean'], positive);
      optMax();
      break;
  }
  return value as unknown as LatencyModel;
}

function checkStalls(value: unknown): ClientStalls {
  if (!isPlainObject(value)) {
    throw new LoadBalancerConfigError('scenario.clientStalls', value, '{ everyMs, ms }');
  }
  const o = checkOptions('scenario.clientStalls', value as unknown as ClientStalls, [
    'everyMs',
    'ms',
  ]);
  const everyMs = checkDuration('scenario.clientStalls.everyMs', o.everyMs, {
    min: 0,
    minExclusive: true,
  });
  const ms = checkDuration('scenario.clientStalls.ms', o.ms, { min: 0 });
  if (ms >= everyMs) {
    throw new LoadBalancerConfigError(
      'scenario.clientStalls.ms',
      ms,
      `less than everyMs (${everyMs})`,
    );
  }
  return { everyMs, ms };
}

function checkKeys(value: unknown): { count: number; zipf: number } {
  if (!isPlainObject(value)) {
    throw new LoadBalancerConfigError('scenario.keys', value, '{ count, zipf? }');
  }
  const k = checkOptions('scenario.keys', value as unknown as KeySpace, ['count', 'zipf']);
  return {
    count: checkNumber('scenario.keys.count', k.count, { min: 1, integer: true }),
    zipf: optNumber('scenario.keys.zipf', k.zipf, 0, TIME),
  };
}

function checkHealth(value: unknown): Required<SimulatedHealthCheck> {
  if (!isPlainObject(value)) {
    throw new LoadBalancerConfigError(
      'scenario.healthCheck',
      value,
      '{ intervalMs, unhealthyThreshold?, healthyThreshold? }',
    );
  }
  const h = checkOptions('scenario.healthCheck', value as unknown as SimulatedHealthCheck, [
    'intervalMs',
    'unhealthyThreshold',
    'healthyThreshold',
  ]);
  const count = { min: 1, integer: true };
  return {
    intervalMs: checkInterval('scenario.healthCheck.intervalMs', h.intervalMs),
    unhealthyThreshold: optNumber(
      'scenario.healthCheck.unhealthyThreshold',
      h.unhealthyThreshold,
      1,
      count,
    ),
    healthyThreshold: optNumber(
      'scenario.healthCheck.healthyThreshold',
      h.healthyThreshold,
      1,
      count,
    ),
  };
}

const OWNED_POOL_KEYS = ['backends', 'algorithm', 'clock', 'random', 'name'];

/**
 * Checks pool options a scenario or candidate passes; the pool validates their values.
 * @internal
 */
export function checkPoolOptions(field: string, value: unknown): SimulationPoolOptions {
  if (value === undefined) return {};
  if (!isPlainObject(value)) throw new LoadBalancerConfigError(field, value, 'pool options');
  for (const key of OWNED_POOL_KEYS) {
    if (key in value) {
      throw new LoadBalancerConfigError(
        `${field}.${key}`,
        value[key],
        'no such option here (the simulator sets backends, algorithm, clock, random and name)',
      );
    }
  }
  return value as SimulationPoolOptions;
}

/** Validates the candidates given to `simulate`. @internal */
export function checkCandidates(value: unknown): readonly AlgorithmCandidate[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new LoadBalancerConfigError(
      'algorithms',
      value,
      'a non-empty array of { name, create, pool?, setup? }',
    );
  }
  const names = new Set<string>();
  return value.map((c: unknown, i) => {
    const field = `algorithms[${i}]`;
    if (!isPlainObject(c))
      throw new LoadBalancerConfigError(field, c, '{ name, create, pool?, setup? }');
    const o = checkOptions(field, c as unknown as AlgorithmCandidate, [
      'name',
      'create',
      'pool',
      'setup',
    ]);
    const name = checkString(`${field}.name`, o.name);
    if (names.has(name)) throw new LoadBalancerConfigError(`${field}.name`, name, 'a unique name');
    names.add(name);
    checkFunction(`${field}.create`, o.create);
    checkPoolOptions(`${field}.pool`, o.pool);
    if (o.setup !== undefined) checkFunction(`${field}.setup`, o.setup);
    return o;
  });
}
