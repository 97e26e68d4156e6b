import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Real redis-server processes for tests, the sample app and the bench: started from the
 * redis-server on PATH, on free loopback ports, without persistence, and stopped afterwards.
 */

export const HOST = '127.0.0.1';

export interface Address {
  host: string;
  port: number;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Fails with install instructions when redis-server is not on PATH. */
export function assertRedisServerInstalled(): void {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      'redis-server was not found on PATH. The tests start their own Redis servers from it. Install it with ' +
        '`apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS), then run the tests again.',
    );
  }
}

/** A loopback port that is free now (and, with `withBus`, port + 10000 too, for cluster nodes). */
export async function freePort(withBus = false): Promise<number> {
  for (;;) {
    const port = await listenOnce(0);
    if (port > 55_000) continue;
    if (!withBus || (await isFree(port + 10_000))) return port;
  }
}

/** One redis-server process. `stop()` and `start()` again keep the same port, for outage tests. */
export class RedisServer implements Address {
  readonly host = HOST;
  private child: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'nrp-redis-'));

  private constructor(
    readonly port: number,
    private readonly extraArgs: readonly string[],
    private readonly configFile?: string,
  ) {}

  /** Starts a server on a free port (or `port`), with extra `--name value` arguments. */
  static async start(options: { port?: number; args?: readonly string[]; withBus?: boolean } = {}): Promise<RedisServer> {
    assertRedisServerInstalled();
    const server = new RedisServer(options.port ?? (await freePort(options.withBus)), options.args ?? []);
    await server.start();
    return server;
  }

  /** Starts a Sentinel process on a free port with the given `sentinel ...` config lines. */
  static async startSentinel(configLines: readonly string[]): Promise<RedisServer> {
    assertRedisServerInstalled();
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'nrp-sentinel-'));
    const configFile = join(dir, 'sentinel.conf');
    writeFileSync(configFile, [`port ${port}`, `bind ${HOST}`, `dir ${dir}`, ...configLines, ''].join('\n'));
    const sentinel = new RedisServer(port, ['--sentinel'], configFile);
    await sentinel.start();
    return sentinel;
  }

  get address(): Address {
    return { host: this.host, port: this.port };
  }

  get url(): string {
    return `redis://${this.host}:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.child) return;
    const args = this.configFile
      ? [this.configFile, ...this.extraArgs]
      : ['--port', String(this.port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', this.dir, '--enable-debug-command', 'local', ...this.extraArgs];
    // Its own process group: a Ctrl-C meant for the app (the sample run in a terminal) does not
    // kill Redis under the app's shutdown; the app stops it, and `running` kills it at exit.
    const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    this.child = child;
    running.add(child);
    child.once('exit', () => {
      running.delete(child);
      if (this.child === child) this.child = undefined;
    });
    await waitFor(() => ping(this.port), `redis-server on port ${this.port} to answer PING`);
  }

  /** Stops the process (no save) and waits until it has exited. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(5_000).then(() => child.kill('SIGKILL'))]);
    await exited;
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A real Redis Cluster: `masters` masters, each with `replicasPerMaster` replicas, all slots assigned. */
export class RedisClusterServers {
  private constructor(readonly servers: readonly RedisServer[]) {}

  static async start(options: { masters?: number; replicasPerMaster?: number; args?: readonly string[] } = {}): Promise<RedisClusterServers> {
    const masters = options.masters ?? 3;
    const replicas = options.replicasPerMaster ?? 0;
    // validity factor 0: a replica always takes over, however stale it thinks it is (a loaded test machine delays replication pings).
    const clusterArgs = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000', '--cluster-replica-validity-factor', '0'];
    const servers: RedisServer[] = [];
    for (let i = 0; i < masters * (1 + replicas); i++) servers.push(await RedisServer.start({ args: [...clusterArgs, ...(options.args ?? [])], withBus: true }));
    const create = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...servers.map((s) => `${s.host}:${s.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stderr || create.stdout}`);
    const cluster = new RedisClusterServers(servers);
    await waitFor(async () => (await Promise.all(servers.map((s) => clusterStateOk(s.port)))).every(Boolean), 'the cluster to report cluster_state:ok');
    return cluster;
  }

  get nodes(): Address[] {
    return this.servers.map((server) => server.address);
  }

  async destroy(): Promise<void> {
    await Promise.all(this.servers.map((server) => server.destroy()));
  }
}

/** A master, one replica, and one Sentinel watching them under `name`. */
export class RedisSentinelServers {
  private constructor(
    readonly name: string,
    readonly master: RedisServer,
    readonly replica: RedisServer,
    readonly sentinel: RedisServer,
  ) {}

  static async start(name = 'nrp-master'): Promise<RedisSentinelServers> {
    const master = await RedisServer.start();
    const replica = await RedisServer.start({ args: ['--replicaof', HOST, String(master.port)] });
    const sentinel = await RedisServer.startSentinel([
      `sentinel monitor ${name} ${HOST} ${master.port} 1`,
      `sentinel down-after-milliseconds ${name} 1000`,
      `sentinel failover-timeout ${name} 5000`,
    ]);
    await waitFor(async () => (await command(sentinel.port, `SENTINEL get-master-addr-by-name ${name}`)).includes(String(master.port)), 'Sentinel to know the master');
    return new RedisSentinelServers(name, master, replica, sentinel);
  }

  async destroy(): Promise<void> {
    await this.sentinel.destroy();
    await Promise.all([this.replica.destroy(), this.master.destroy()]);
  }
}

/** Sends one inline command over a raw socket and returns the raw reply text. */
export function command(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: HOST, port });
    let reply = '';
    socket.setTimeout(2_000, () => socket.destroy(new Error('timeout')));
    socket.once('error', reject);
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.endsWith('\r\n')) {
        socket.end();
        resolve(reply);
      }
    });
    socket.write(`${line}\r\n`);
  });
}

async function ping(port: number): Promise<boolean> {
  return (await command(port, 'PING').catch(() => '')).startsWith('+PONG');
}

async function clusterStateOk(port: number): Promise<boolean> {
  return (await command(port, 'CLUSTER INFO').catch(() => '')).includes('cluster_state:ok');
}

export async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`Timed out after ${timeoutMs}ms waiting for ${what}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, HOST, () => {
      const { port: bound } = server.address() as { port: number };
      server.close(() => resolve(bound));
    });
  });
}

function isFree(port: number): Promise<boolean> {
  return listenOnce(port).then(
    () => true,
    () => false,
  );
}
