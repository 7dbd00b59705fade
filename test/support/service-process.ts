/**
 * A real server process for integration tests (redis-server, etcd): started, polled until it
 * answers, killed as a crash and restarted with the same arguments, stopped for good.
 */
import { type ChildProcess, spawn } from 'node:child_process';

export interface ServiceProcess {
  /** Whether the process runs now. */
  readonly running: boolean;
  /** Kills the process at once (SIGKILL, as a crash) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts the process again with the same arguments (after `kill`). */
  restart(): Promise<void>;
  /** Stops the process for good and cleans up. Idempotent. */
  stop(): Promise<void>;
}

export interface ServiceSpec {
  command: string;
  args: readonly string[];
  /** Whether the process answers yet (each call bounded in time by the caller's check). */
  ready: () => Promise<boolean>;
  /** What `ready` waits for, for the error when it never comes, e.g. `PING on port 6380`. */
  readyWhat: string;
  readyWithinMs: number;
  pollMs: number;
  /** Runs once after the last stop, or after a first start that failed (a data folder, say). */
  cleanup?: () => Promise<void>;
}

/** Starts `spec.command` and waits until `spec.ready()` holds. */
export async function startServiceProcess(spec: ServiceSpec): Promise<ServiceProcess> {
  let proc: ChildProcess | undefined;
  let stopped = false;

  const launch = async (): Promise<void> => {
    const child = spawn(spec.command, [...spec.args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    proc = child;
    const deadline = Date.now() + spec.readyWithinMs;
    while (!(await spec.ready())) {
      if (child.exitCode !== null) {
        throw new Error(`${spec.command} exited with ${child.exitCode}: ${stderr}`);
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(
          `${spec.command} did not answer ${spec.readyWhat} within ${spec.readyWithinMs} ms: ${stderr}`,
        );
      }
      await new Promise((r) => setTimeout(r, spec.pollMs));
    }
  };

  const kill = async (): Promise<void> => {
    const child = proc;
    proc = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  };

  try {
    await launch();
  } catch (error) {
    await kill();
    await spec.cleanup?.();
    throw error;
  }
  return {
    get running() {
      return proc !== undefined && proc.exitCode === null && proc.signalCode === null;
    },
    kill,
    async restart() {
      if (stopped) throw new Error(`${spec.command} was stopped for good`);
      await kill();
      await launch();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await kill();
      await spec.cleanup?.();
    },
  };
}
