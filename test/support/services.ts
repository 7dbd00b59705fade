/**
 * Whether a test may skip because a local service (redis-server, dnsmasq) is missing: never in
 * CI, where `.ci/run` installs them, so a missing service fails the suite instead of hiding.
 */
import { execFileSync } from 'node:child_process';

export function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Returns true when the suite should run. Throws in CI when the command is missing.
 */
export function requireCommand(cmd: string): boolean {
  if (hasCommand(cmd)) return true;
  if (process.env['CI'] === 'true' || process.env['LOADWISE_REQUIRE_SERVICES'] === '1') {
    throw new Error(`${cmd} is required in CI but was not found; .ci/run installs it with apt-get`);
  }
  return false;
}
