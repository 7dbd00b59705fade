/**
 * Global test setup. Services that tests need (redis-server, a DNS server) are started by the
 * suites that use them; this hook only records whether a missing service may be skipped
 * (never in CI).
 */
export default function setup(): void {
  process.env['LOADWISE_REQUIRE_SERVICES'] =
    process.env['CI'] === 'true' ? '1' : (process.env['LOADWISE_REQUIRE_SERVICES'] ?? '');
}
