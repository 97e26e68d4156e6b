import { Injectable } from '@nestjs/common';
import type { HealthIndicatorService } from '@nestjs/terminus';
import { toTimerMilliseconds, type Duration } from './duration.js';
import { RedisPatternsError } from './errors.js';
import { isCluster } from './redis-client.js';
import { RedisConnections } from './redis-connections.service.js';
import { DEFAULT_CONNECTION } from './core.options.js';

/** A health result as @nestjs/terminus builds it: `{ [key]: { status, ...details } }`. */
export type RedisHealthResult<Key extends string = string> = Record<Key, { status: 'up' | 'down' } & Record<string, unknown>>;

/** Options of {@link RedisHealthIndicator.isHealthy}. */
export interface RedisHealthOptions {
  /** Which connection to check. @default 'default' */
  connection?: string;
  /** How long PING (and CLUSTER INFO) may take before the check reports down. @default '1s' */
  timeout?: Duration;
}

/**
 * A part a feature adds to the details of every `up` report, under `name`: what `read` answers for
 * the connection checked (the insights feature adds `server`, a summary of the server's numbers).
 */
export interface HealthDetailsPart {
  name: string;
  /** Read beside PING, within the same timeout; a failure or a late answer leaves the part out. */
  read(connection: string): Promise<unknown>;
}

/**
 * A health indicator for @nestjs/terminus (an optional peer dependency, loaded on first use):
 * PINGs the connection within a timeout and, on a Cluster, also requires `cluster_state:ok`.
 * Results are built with terminus's `HealthIndicatorService.check(key).up()/down()`. A Redis
 * failure is reported as `down` with a message, never thrown. Features may add details to `up`
 * reports ({@link addDetails}); those never turn a check down.
 *
 * @example
 * @Get('health')
 * @HealthCheck()
 * check() {
 *   return this.health.check([() => this.redis.isHealthy('redis', { timeout: '500ms' })]);
 * }
 */
@Injectable()
export class RedisHealthIndicator {
  private terminus: Promise<HealthIndicatorService> | undefined;
  private readonly parts: HealthDetailsPart[] = [];

  constructor(private readonly connections: RedisConnections) {}

  /**
   * Adds a part to the details of every `up` report.
   * @example
   * health.addDetails({ name: 'server', read: (connection) => this.summary(connection) });
   */
  addDetails(part: HealthDetailsPart): void {
    this.parts.push(part);
  }

  async isHealthy<const Key extends string>(key: Key, options: RedisHealthOptions = {}): Promise<RedisHealthResult<Key>> {
    const name = options.connection ?? DEFAULT_CONNECTION;
    const timeoutMs = toTimerMilliseconds(options.timeout ?? '1s', 'timeout');
    const indicator = (await this.healthIndicatorService()).check(key);
    try {
      const [{ details, responseTimeMs }, parts] = await Promise.all([
        withTimeout(this.timedProbe(name), timeoutMs),
        this.readParts(name, timeoutMs),
      ]);
      return indicator.up({ connection: name, mode: this.connections.mode(name), responseTimeMs, ...details, ...parts });
    } catch (error) {
      return indicator.down({ connection: name, message: (error as Error).message });
    }
  }

  private healthIndicatorService(): Promise<HealthIndicatorService> {
    this.terminus ??= import('@nestjs/terminus').then(
      (terminus) => new terminus.HealthIndicatorService(),
      (error: unknown) => {
        this.terminus = undefined;
        throw new RedisPatternsError('RedisHealthIndicator needs @nestjs/terminus: npm install @nestjs/terminus', { cause: error });
      },
    );
    return this.terminus;
  }

  private async timedProbe(name: string): Promise<{ details: Record<string, unknown>; responseTimeMs: number }> {
    const started = performance.now();
    const details = await this.probe(name);
    return { details, responseTimeMs: Math.round(performance.now() - started) };
  }

  /** The parts features add, each left out when it fails or is late. */
  private async readParts(name: string, timeoutMs: number): Promise<Record<string, unknown>> {
    const read = await Promise.all(
      this.parts.map((part) =>
        withTimeout(part.read(name), timeoutMs).then(
          (value) => [[part.name, value] as const],
          () => [],
        ),
      ),
    );
    return Object.fromEntries(read.flat());
  }

  private async probe(name: string): Promise<Record<string, unknown>> {
    const client = this.connections.get(name);
    await client.ping();
    if (!isCluster(client)) return {};
    const info = await client.cluster('INFO');
    const state = /cluster_state:(\w+)/.exec(info)?.[1];
    if (state !== 'ok') throw new Error(`cluster_state is ${state ?? 'unknown'}`);
    return { clusterState: state };
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms}ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
