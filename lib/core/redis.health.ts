import { Injectable } from '@nestjs/common';
import type { HealthIndicatorService } from '@nestjs/terminus';
import { toTimerMilliseconds, type Duration } from './duration.js';
import { RedisPatternsError } from './errors.js';
import { isCluster } from './redis-client.js';
import { RedisConnections } from './redis-connections.service.js';
import { DEFAULT_CONNECTION } from './redis-patterns.options.js';

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
 * A health indicator for @nestjs/terminus (an optional peer dependency, loaded on first use):
 * PINGs the connection within a timeout and, on a Cluster, also requires `cluster_state:ok`.
 * Results are built with terminus's `HealthIndicatorService.check(key).up()/down()`. A Redis
 * failure is reported as `down` with a message, never thrown.
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

  constructor(private readonly connections: RedisConnections) {}

  async isHealthy<const Key extends string>(key: Key, options: RedisHealthOptions = {}): Promise<RedisHealthResult<Key>> {
    const name = options.connection ?? DEFAULT_CONNECTION;
    const timeoutMs = toTimerMilliseconds(options.timeout ?? '1s', 'timeout');
    const indicator = (await this.healthIndicatorService()).check(key);
    const started = performance.now();
    try {
      const details = await withTimeout(this.probe(name), timeoutMs);
      return indicator.up({ connection: name, mode: this.connections.mode(name), responseTimeMs: Math.round(performance.now() - started), ...details });
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
