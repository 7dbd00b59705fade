/**
 * The cost of Layer 7 routing against a single pool, without the network: a pick through the
 * pool alone, then through a Router with six rules (matched by the first rule and by the
 * default), then the same through the balanced fetch with an in-memory fetch function.
 */
import {
  BackendPool,
  createBalancedFetch,
  PowerOfTwoChoices,
  type Route,
  Router,
} from '../src/index.js';
import { fmt, msPerRun, nsPerOp, type Section, table } from './harness.js';

const urls = Array.from({ length: 10 }, (_, i) => `http://10.0.0.${i + 1}:8080`);
// Building a Request costs microseconds in Node 20, so the router rows need fewer iterations.
const FEW = { iterations: 20_000, runs: 5 };
const pool = () =>
  new BackendPool({ backends: urls, algorithm: new PowerOfTwoChoices(), skew: false });

export default async function run(): Promise<Section> {
  const single = pool();
  const api = pool();
  const rules: Route[] = [
    {
      name: 'api',
      match: { pathPrefix: '/api' },
      pool: api,
      headers: { set: { 'x-route': 'api' } },
    },
    { name: 'static', match: { pathPrefix: '/static', methods: ['GET', 'HEAD'] }, pool: pool() },
    { name: 'orders', match: { path: '/users/:id/orders/*' }, pool: pool() },
    { name: 'tenant', match: { host: '*.tenants.example' }, pool: pool() },
    { name: 'beta', match: { headers: { 'x-beta': /^(1|yes)$/ } }, pool: pool() },
    {
      name: 'admin',
      match: { pathPrefix: '/admin', headers: { 'x-role': 'admin' } },
      pool: pool(),
    },
  ];
  const router = new Router({ routes: rules, default: { pool: pool() } });
  const first = new Request('http://loadwise.invalid/api/users/1');
  const miss = new Request('http://loadwise.invalid/about/team');

  const bare = nsPerOp(() => single.acquire().release({ ok: true, latencyMs: 1 }));
  /** ns per resolve of `request` plus a pick and release on the pool it resolves to. */
  const viaRouter = (request: Request): number =>
    nsPerOp(() => {
      const r = router.resolve(request);
      r.target.acquire().release({ ok: true, latencyMs: 1 });
      return r;
    }, FEW);
  const viaFirst = viaRouter(first);
  const viaDefault = viaRouter(miss);

  // Through the balanced fetch, with an in-memory fetch so only the library's work is timed.
  const fake = async () => new Response(null, { status: 204 });
  const fetchPool = createBalancedFetch(single, { fetch: fake });
  const fetchRouter = createBalancedFetch(router, { fetch: fake });
  const calls = 2_000;
  /** ns per call of `f(path)` with its body read, over runs of `calls` sequential calls. */
  const nsPerCall = async (f: typeof fetchPool, path: string): Promise<number> => {
    const ms = await msPerRun(async () => {
      for (let i = 0; i < calls; i++) await (await f(path)).arrayBuffer();
    });
    return (ms * 1e6) / calls;
  };
  const viaFetchPool = await nsPerCall(fetchPool, '/api/users/1');
  const viaFetchFirst = await nsPerCall(fetchRouter, '/api/users/1');
  const viaFetchDefault = await nsPerCall(fetchRouter, '/about/team');
  await Promise.all(
    [single, api, ...rules.map((r) => r.pool as BackendPool)].map((p) => p.close()),
  );

  const row = (label: string, ns: number, base: number) => [label, fmt(ns), fmt(ns / base, 2)];
  const rows = [
    row('pool.acquire + release (baseline)', bare, bare),
    row('router.resolve (1st rule, sets a header) + acquire + release', viaFirst, bare),
    row('router.resolve (no rule, default) + acquire + release', viaDefault, bare),
    row('balanced fetch over the pool (in-memory fetch; baseline)', viaFetchPool, viaFetchPool),
    row('balanced fetch over the router, 1st rule', viaFetchFirst, viaFetchPool),
    row('balanced fetch over the router, default', viaFetchDefault, viaFetchPool),
  ];
  return {
    title: 'Layer 7 routing',
    body: `${table(['path', 'ns per call (median)', 'ratio'], rows)}\n\nSix rules, ten backends per pool, P2C; the second block times the whole balanced-fetch call with an in-memory \`fetch\`, so the network is left out. Matching visits the rules in order and allocates nothing per rule; a rule that changes headers or the path builds one new \`Request\`.`,
  };
}
