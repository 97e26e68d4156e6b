import { Injectable } from '@nestjs/common';
import { Cluster } from 'ioredis';
import { DEFAULT_CONNECTION } from './redis-patterns.options.js';
import { RedisConnections } from './redis-connections.service.js';
import { toPositiveMilliseconds, type Duration } from './duration.js';

/** A health result in the shape @nestjs/terminus expects: `{ [key]: { status, ...details } }`. */
export type RedisHealthResult<Key extends string = string> = Record<Key, { status: 'up' | 'down' } & Record<string, unknown>>;

/** Options of {@link RedisHealthIndicator.isHealthy}. */
export interface RedisHealthOptions {
  /** Which connection to check. @default 'default' */
  connection?: string;
  /** How long PING (and CLUSTER INFO) may take before the check reports down. @default '1s' */
  timeout?: Duration;
}

/**
 * A health indicator for @nestjs/terminus: PINGs the connection within a timeout and, on a
 * Cluster, also requires `cluster_state:ok`. It never throws; a failure is reported as `down`
 * with a message. Works without terminus installed, since it only returns data.
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
  constructor(private readonly connections: RedisConnections) {}

  async isHealthy<const Key extends string>(key: Key, options: RedisHealthOptions = {}): Promise<RedisHealthResult<Key>> {
    const name = options.connection ?? DEFAULT_CONNECTION;
    const timeoutMs = toPositiveMilliseconds(options.timeout ?? '1s', 'timeout');
    const started = performance.now();
    try {
      const details = await withTimeout(this.probe(name), timeoutMs);
      return result(key, { status: 'up', connection: name, mode: this.connections.mode(name), responseTimeMs: Math.round(performance.now() - started), ...details });
    } catch (error) {
      return result(key, { status: 'down', connection: name, message: (error as Error).message });
    }
  }

  private async probe(name: string): Promise<Record<string, unknown>> {
    const client = this.connections.get(name);
    await client.ping();
    if (!(client instanceof Cluster)) return {};
    const info = await client.cluster('INFO');
    const state = /cluster_state:(\w+)/.exec(info)?.[1];
    if (state !== 'ok') throw new Error(`cluster_state is ${state ?? 'unknown'}`);
    return { clusterState: state };
  }
}

function result<Key extends string>(key: Key, details: { status: 'up' | 'down' } & Record<string, unknown>): RedisHealthResult<Key> {
  return { [key]: details } as RedisHealthResult<Key>;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms}ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
