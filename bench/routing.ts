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
  const viaFirst = nsPerOp(() => {
    const r = router.resolve(first);
    r.target.acquire().release({ ok: true, latencyMs: 1 });
    return r;
  }, FEW);
  const viaDefault = nsPerOp(() => {
    const r = router.resolve(miss);
    r.target.acquire().release({ ok: true, latencyMs: 1 });
    return r;
  }, FEW);

  // Through the balanced fetch, with an in-memory fetch so only the library's work is timed.
  const fake = async () => new Response(null, { status: 204 });
  const viaPool = createBalancedFetch(single, { fetch: fake });
  const viaRouter = createBalancedFetch(router, { fetch: fake });
  const calls = 2_000;
  const loop = (f: typeof viaPool, path: string) => async () => {
    for (let i = 0; i < calls; i++) await (await f(path)).arrayBuffer();
  };
  const fetchPool = ((await msPerRun(loop(viaPool, '/api/users/1'))) * 1e6) / calls;
  const fetchRouterFirst = ((await msPerRun(loop(viaRouter, '/api/users/1'))) * 1e6) / calls;
  const fetchRouterDefault = ((await msPerRun(loop(viaRouter, '/about/team'))) * 1e6) / calls;
  await Promise.all(
    [single, api, ...rules.map((r) => r.pool as BackendPool)].map((p) => p.close()),
  );

  const rows = [
    ['pool.acquire + release (baseline)', fmt(bare), '1.00'],
    [
      'router.resolve (1st rule, sets a header) + acquire + release',
      fmt(viaFirst),
      fmt(viaFirst / bare, 2),
    ],
    [
      'router.resolve (no rule, default) + acquire + release',
      fmt(viaDefault),
      fmt(viaDefault / bare, 2),
    ],
    ['balanced fetch over the pool (in-memory fetch; baseline)', fmt(fetchPool), '1.00'],
    [
      'balanced fetch over the router, 1st rule',
      fmt(fetchRouterFirst),
      fmt(fetchRouterFirst / fetchPool, 2),
    ],
    [
      'balanced fetch over the router, default',
      fmt(fetchRouterDefault),
      fmt(fetchRouterDefault / fetchPool, 2),
    ],
  ];
  return {
    title: 'Layer 7 routing',
    body: `${table(['path', 'ns per call (median)', 'ratio'], rows)}\n\nSix rules, ten backends per pool, P2C; the second block times the whole balanced-fetch call with an in-memory \`fetch\`, so the network is left out. Matching visits the rules in order and allocates nothing per rule; a rule that changes headers or the path builds one new \`Request\`.`,
  };
}
