import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisPatternsError } from '../core/errors.js';
import type { UrlConnectionOptions } from '../core/core.options.js';
import { answersPing, command, freePort, HOST, sleep, waitFor, type Address } from './testing.probes.js';

/** A Redis binary the testing helpers need (`redis-server`, or `redis-cli` for a Cluster) is not installed. */
export class RedisServerNotFoundError extends RedisPatternsError {
  constructor(readonly binary: string) {
    super(
      `${binary} was not found on PATH: the testing helpers start real Redis servers from it. Install the package that ` +
        `has it: \`apt-get install -y redis-server\` (Debian/Ubuntu, with redis-tools for redis-cli), \`dnf install redis\` ` +
        `(Fedora) or \`brew install redis\` (macOS); or pass its path as \`binary\`.`,
    );
  }
}

/** Throws a `RedisServerNotFoundError` naming the package to install when `binary` does not run. */
export function assertInstalled(binary: string): void {
  const probe = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) throw new RedisServerNotFoundError(binary);
}

export interface RedisTestServerOptions {
  /** The port to listen on; a free loopback port by default. */
  port?: number;
  /** Extra `redis-server` arguments, e.g. `['--maxmemory-policy', 'noeviction']`. */
  args?: readonly string[];
  /** Also keep port + 10000 free (a Cluster node's bus). */
  withBus?: boolean;
  /** The redis-server to run: a name on PATH or a path. Default `redis-server`. */
  binary?: string;
}

const running = new Set<ChildProcess>();
let killOnExitRegistered = false;

/** Kills every server still running when the process exits (a test runner that dies mid-suite leaves none behind). */
function killOnExit(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (killOnExitRegistered) return;
  killOnExitRegistered = true;
  process.once('exit', () => {
    for (const server of running) server.kill('SIGKILL');
  });
}

/**
 * A real redis-server process for tests: started from the redis-server on PATH on a free loopback
 * port, without persistence, in a temporary directory removed by `destroy()`. `stop()` and `start()`
 * again keep the port, for outage tests; `kill()` is a crash (SIGKILL).
 *
 * @example
 * const redis = await RedisTestServer.start();
 * const app = await Test.createTestingModule({
 *   imports: [RedisPatternsModule.forRoot({ connection: redis.connection })],
 * }).compile();
 * afterEach(() => redis.flush());
 * afterAll(() => redis.destroy());
 */
export class RedisTestServer implements Address {
  readonly host = HOST;
  private child: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'nrp-redis-'));

  private constructor(
    readonly port: number,
    private readonly binary: string,
    private readonly extraArgs: readonly string[],
    private readonly configFile?: string,
  ) {}

  /** Starts a server and resolves once it answers PING. */
  static async start(options: RedisTestServerOptions = {}): Promise<RedisTestServer> {
    const binary = options.binary ?? 'redis-server';
    assertInstalled(binary);
    const server = new RedisTestServer(options.port ?? (await freePort(options.withBus)), binary, options.args ?? []);
    await server.start();
    return server;
  }

  /** Starts a Sentinel process on a free port with the given `sentinel ...` config lines. */
  static async startSentinel(configLines: readonly string[], binary = 'redis-server'): Promise<RedisTestServer> {
    assertInstalled(binary);
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'nrp-sentinel-'));
    const configFile = join(dir, 'sentinel.conf');
    writeFileSync(configFile, [`port ${port}`, `bind ${HOST}`, `dir ${dir}`, ...configLines, ''].join('\n'));
    const sentinel = new RedisTestServer(port, binary, ['--sentinel'], configFile);
    await sentinel.start();
    return sentinel;
  }

  get address(): Address {
    return { host: this.host, port: this.port };
  }

  get url(): string {
    return `redis://${this.host}:${this.port}`;
  }

  /** The `connection` option for `RedisPatternsModule.forRoot()`. */
  get connection(): UrlConnectionOptions {
    return { url: this.url };
  }

  /** Starts the process again (after `stop()` or `kill()`), on the same port; resolves once it answers PING. */
  async start(): Promise<void> {
    if (this.child) return;
    const args = this.configFile
      ? [this.configFile, ...this.extraArgs]
      : [
          '--port',
          String(this.port),
          '--bind',
          HOST,
          '--save',
          '',
          '--appendonly',
          'no',
          '--dir',
          this.dir,
          '--enable-debug-command',
          'local',
          ...this.extraArgs,
        ];
    // Its own process group: a Ctrl-C meant for the app (the sample run in a terminal) does not
    // kill Redis under the app's shutdown; the app stops it, and killOnExit kills it at exit.
    const child = spawn(this.binary, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    this.child = child;
    killOnExit(child);
    child.once('exit', () => {
      if (this.child === child) this.child = undefined;
    });
    await waitFor(() => answersPing(this.port), `redis-server on port ${this.port} to answer PING`);
  }

  /** Deletes every key in every database (FLUSHALL), e.g. between tests. */
  async flush(): Promise<void> {
    const reply = await command(this.port, 'FLUSHALL');
    if (!reply.startsWith('+OK')) throw new RedisPatternsError(`FLUSHALL on port ${this.port} failed: ${reply.trim()}`);
  }

  /** Stops the process (SIGTERM, no save) and waits until it has exited. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(5_000).then(() => child.kill('SIGKILL'))]);
    await exited;
  }

  /** Kills the process with SIGKILL (a crash: no shutdown, nothing flushed) and waits until it has exited. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** Stops the process and removes its directory. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
