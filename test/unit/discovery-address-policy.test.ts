/**
 * The address policy of discovery bindings: which endpoint addresses may become backends. The
 * DNS paths are covered against real DNS servers in test/integration/dns-*.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  AddressPolicy,
  BackendPool,
  DiscoveryBinding,
  type DiscoveryBindingOptions,
  type DiscoveryEvents,
  LoadBalancerConfigError,
  StaticDiscovery,
} from '../../src/index.js';
import { ManualClock } from '../../src/testing/index.js';
import { expectConfigErrors } from '../support/config-errors.js';

describe('AddressPolicy.check', () => {
  const byDefault = new AddressPolicy();

  it.each([
    ['http://0.0.0.0:8080', 'unspecified'],
    ['http://0:8080', 'unspecified'],
    ['http://0.1.2.3:8080', 'unspecified'],
    ['grpc://0:8080', 'unspecified'],
    ['http://[::]:8080', 'unspecified'],
    ['http://[::ffff:0.0.0.0]:8080', 'unspecified'],
    ['http://255.255.255.255:8080', 'broadcast'],
    ['http://10.0.0.1:0', 'port 0'],
    ['http://169.254.169.254', 'metadata'],
    ['http://169.254.170.2', 'metadata'],
    ['http://100.100.100.200', 'metadata'],
    ['http://[fd00:ec2::254]', 'metadata'],
    // The same metadata address written the ways the URL parser and getaddrinfo accept.
    ['http://2852039166/', 'metadata'],
    ['http://0xa9.0xfe.0xa9.0xfe/', 'metadata'],
    ['http://[::ffff:169.254.169.254]', 'metadata'],
    ['http://[::ffff:a9fe:a9fe]', 'metadata'],
    ['http://[0:0:0:0:0:ffff:169.254.169.254]', 'metadata'],
    ['grpc://[::ffff:a9fe:a9fe]:50051', 'metadata'],
    ['http://169.254.1.1', 'link-local'],
    ['http://[fe80::1]', 'link-local'],
    ['http://[febf:ffff::1]', 'link-local'],
    ['http://224.0.0.1', 'multicast'],
    ['http://239.255.255.250', 'multicast'],
    ['http://[ff02::1]', 'multicast'],
    ['http://[::ffff:224.0.0.1]', 'multicast'],
  ])('refuses %s by default (%s)', (url, why) => {
    const reason = byDefault.check(url);
    expect(reason).toBeDefined();
    expect(reason).toContain(why);
  });

  it.each([
    'http://10.1.2.3:8080',
    'http://172.31.0.1',
    'http://192.168.1.1',
    'http://100.64.0.1',
    'http://[fd00::7]:8080',
    'http://[2001:db8::1]',
    'http://127.0.0.1:8080',
    'http://[::1]:8080',
    'http://localhost:8080',
    'http://api.internal:8080',
    'http://169.253.255.255',
    'http://169.255.0.0',
    'http://[fec0::1]',
    'http://223.255.255.255',
    'http://240.0.0.1',
  ])('admits %s by default', (url) => {
    expect(byDefault.check(url)).toBeUndefined();
  });

  it('denies the categories and CIDR ranges it is given, IPv4 ranges matching IPv4-mapped IPv6', () => {
    const p = new AddressPolicy({
      deny: ['loopback', 'private', '203.0.113.0/24', '2001:db8:1::/48'],
    });
    expect(p.check('http://127.0.0.1')).toContain('127.0.0.0/8 (loopback)');
    expect(p.check('http://[::1]')).toContain('::1/128 (loopback)');
    expect(p.check('http://localhost:8080')).toContain('loopback');
    expect(p.check('http://api.localhost')).toContain('loopback');
    expect(p.check('http://10.0.0.1')).toContain('10.0.0.0/8 (private)');
    expect(p.check('http://172.16.0.1')).toContain('172.16.0.0/12 (private)');
    expect(p.check('http://172.32.0.1')).toBeUndefined();
    expect(p.check('http://[fd12::1]')).toContain('fc00::/7 (private)');
    expect(p.check('http://203.0.113.77')).toContain('203.0.113.0/24');
    expect(p.check('http://[::ffff:203.0.113.77]')).toContain('203.0.113.0/24');
    expect(p.check('http://203.0.114.1')).toBeUndefined();
    expect(p.check('http://[2001:db8:1:ffff::1]')).toContain('2001:db8:1::/48');
    expect(p.check('http://[2001:db8:2::1]')).toBeUndefined();
    // deny replaces the defaults: link-local is admitted now, the unspecified address never.
    expect(p.check('http://169.254.1.1')).toBeUndefined();
    expect(p.check('http://0.0.0.0')).toContain('unspecified');
  });

  it('with an allow list admits only what it lists, refuses host names unless told, and lets deny win', () => {
    const p = new AddressPolicy({ allow: ['10.20.0.0/16', 'fd00:20::/32', 'loopback'] });
    expect(p.check('http://10.20.3.4')).toBeUndefined();
    expect(p.check('http://[::ffff:10.20.3.4]')).toBeUndefined();
    expect(p.check('http://10.21.0.1')).toContain('in no range addressPolicy allows');
    expect(p.check('http://[fd00:20:ffff::1]')).toBeUndefined();
    expect(p.check('http://[fd00:21::1]')).toContain('in no range');
    expect(p.check('http://127.0.0.1')).toBeUndefined();
    expect(p.check('http://localhost')).toBeUndefined();
    expect(p.check('http://api.internal')).toContain('host name');
    expect(
      new AddressPolicy({ allow: ['10.0.0.0/8'], allowHostnames: true }).check(
        'http://api.internal',
      ),
    ).toBeUndefined();
    expect(new AddressPolicy({ allowHostnames: false }).check('http://api.internal')).toContain(
      'host name',
    );
    const denyWins = new AddressPolicy({ allow: ['169.254.0.0/16'] });
    expect(denyWins.check('http://169.254.169.254')).toContain('metadata');
    const everything = new AddressPolicy({ deny: [], allow: ['::/0'] });
    expect(everything.check('http://169.254.169.254')).toBeUndefined();
    expect(everything.check('http://[::ffff:a9fe:a9fe]')).toBeUndefined();
    expect(everything.check('http://0.0.0.0')).toContain('unspecified');
  });

  it('matches prefixes that end inside a byte', () => {
    const p = new AddressPolicy({ deny: ['10.0.0.0/9', 'fe80::/10'], allow: ['0.0.0.0/0'] });
    expect(p.check('http://10.127.255.255')).toContain('10.0.0.0/9');
    expect(p.check('http://10.128.0.0')).toBeUndefined();
    expect(p.check('http://[::ffff:10.128.0.0]')).toBeUndefined();
    // 0.0.0.0/0 is IPv4 only: an IPv6 address is in no allowed range.
    expect(p.check('http://[2001:db8::1]')).toContain('in no range');
  });

  it('refuses bad options with LoadBalancerConfigError naming the entry', () => {
    expectConfigErrors([
      [() => new AddressPolicy({ deny: 'private' as never }), 'addressPolicy.deny'],
      [() => new AddressPolicy({ deny: [1 as never] }), 'addressPolicy.deny'],
      [() => new AddressPolicy({ deny: ['metadata', 'public'] }), 'addressPolicy.deny[1]'],
      [() => new AddressPolicy({ deny: ['10.1.0.0/8'] }), 'addressPolicy.deny[0]'],
      [() => new AddressPolicy({ deny: ['10.0.0.0/33'] }), 'addressPolicy.deny[0]'],
      [() => new AddressPolicy({ deny: ['10.0.0.0/08'] }), 'addressPolicy.deny[0]'],
      [() => new AddressPolicy({ deny: ['010.0.0.0/8'] }), 'addressPolicy.deny[0]'],
      [() => new AddressPolicy({ deny: ['10.0.0/8'] }), 'addressPolicy.deny[0]'],
      [() => new AddressPolicy({ allow: ['::/129'] }), 'addressPolicy.allow[0]'],
      [() => new AddressPolicy({ allow: ['1::2::3'] }), 'addressPolicy.allow[0]'],
      [() => new AddressPolicy({ allow: ['1:2:3:4:5:6:7:8:9'] }), 'addressPolicy.allow[0]'],
      [() => new AddressPolicy({ allow: ['1:2:3:4:5:6:7:1.2.3.4'] }), 'addressPolicy.allow[0]'],
      [() => new AddressPolicy({ allow: ['fe80::1%eth0'] }), 'addressPolicy.allow[0]'],
      [() => new AddressPolicy({ allowHostnames: 'yes' as never }), 'addressPolicy.allowHostnames'],
      [() => new AddressPolicy({ denny: [] } as never), 'addressPolicy.denny'],
    ]);
    expect(
      () => new AddressPolicy({ allow: ['1:2:3:4:5:6:1.2.3.4', '::ffff:0:0/96'] }),
    ).not.toThrow();
  });
});

describe('DiscoveryBinding address policy', () => {
  function bind(endpoints: unknown[], options: DiscoveryBindingOptions = {}) {
    const pool = new BackendPool({ clock: new ManualClock(), skew: false });
    const source = new StaticDiscovery([]);
    const binding = new DiscoveryBinding(pool, source, options);
    const invalid: Parameters<DiscoveryEvents['invalid-endpoint']>[0][] = [];
    binding.on('invalid-endpoint', (e) => invalid.push(e));
    binding.start();
    (source as unknown as { publish(e: unknown[]): void }).publish(endpoints);
    return { pool, binding, invalid, ids: () => pool.backends().map((b) => b.id) };
  }

  it('leaves refused endpoints out of every answer and reports each with its reason', async () => {
    const { ids, invalid, pool } = bind([
      'http://10.0.0.1:8080',
      'http://169.254.169.254:80',
      { url: 'http://0.0.0.0:8080', weight: 2 },
      'http://[::ffff:169.254.169.254]:8080',
      'http://10.0.0.2:0',
      'http://[::]:8080',
    ]);
    expect(ids()).toEqual(['10.0.0.1:8080']);
    expect(invalid.map((e) => [e.endpoint, e.reason])).toEqual([
      ['http://169.254.169.254:80', expect.stringContaining('(metadata)')],
      [{ url: 'http://0.0.0.0:8080', weight: 2 }, expect.stringContaining('unspecified')],
      ['http://[::ffff:169.254.169.254]:8080', expect.stringContaining('(metadata)')],
      ['http://10.0.0.2:0', expect.stringContaining('port 0')],
      ['http://[::]:8080', expect.stringContaining('unspecified')],
    ]);
    for (const e of invalid) {
      expect(e.source).toBe('static');
      expect(e.error).toBeInstanceOf(LoadBalancerConfigError);
      expect((e.error as Error).message).toContain(e.reason);
    }
    expect((invalid[1]!.error as LoadBalancerConfigError).field).toBe('static endpoints[2].url');
    await pool.close();
  });

  it('takes the policy as options or as an AddressPolicy, and refuses bad policy options at construction', async () => {
    const a = bind(['http://10.0.0.1:8080', 'http://127.0.0.1:8080'], {
      addressPolicy: { allow: ['10.0.0.0/8'] },
    });
    expect(a.ids()).toEqual(['10.0.0.1:8080']);
    const b = bind(['http://10.0.0.1:8080', 'http://127.0.0.1:8080'], {
      addressPolicy: new AddressPolicy({ deny: ['private'] }),
    });
    expect(b.ids()).toEqual(['127.0.0.1:8080']);
    const c = bind(['http://169.254.169.254:8080'], { addressPolicy: { deny: [] } });
    expect(c.ids()).toEqual(['169.254.169.254:8080']);
    await Promise.all([a.pool.close(), b.pool.close(), c.pool.close()]);
    const pool = new BackendPool({ skew: false });
    expectConfigErrors([
      [
        () => new DiscoveryBinding(pool, new StaticDiscovery(), { addressPolicy: { deny: ['x'] } }),
        'addressPolicy.deny[0]',
      ],
    ]);
    await pool.close();
  });

  it('an answer whose endpoints are all refused is an empty answer: the pool keeps its set', async () => {
    const { ids, binding, pool } = bind(['http://10.0.0.1:8080']);
    const empty: unknown[] = [];
    binding.on('empty-answer', (e) => empty.push(e));
    const source = binding.source as StaticDiscovery;
    (source as unknown as { publish(e: unknown[]): void }).publish([
      'http://169.254.169.254:8080',
      'http://0.0.0.0:8080',
    ]);
    expect(ids()).toEqual(['10.0.0.1:8080']);
    expect(empty).toEqual([{ source: 'static', invalid: 2, kept: 1 }]);
    await pool.close();
  });

  it('redacts credentials of a malformed endpoint in the event', async () => {
    const { invalid, pool } = bind(['http://user:s3cret@10.0.0.1:8080', 'http://10.0.0.2:8080']);
    expect(invalid).toHaveLength(1);
    expect(JSON.stringify(invalid[0]!.endpoint)).not.toContain('s3cret');
    expect(invalid[0]!.reason).not.toContain('s3cret');
    expect(invalid[0]!.reason).toContain('without credentials');
    await pool.close();
  });
});
