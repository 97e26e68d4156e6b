import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { Cluster, ClusterOptions, Redis, RedisOptions, SentinelAddress } from 'ioredis';
import { JsonCodec, type RedisCodec } from './codec.js';
import type { Duration } from './duration.js';

/**
 * Connect with a `redis://` or `rediss://` (TLS) URL.
 *
 * @example
 * { url: 'rediss://app:secret@cache.internal:6380/2' }
 */
export interface UrlConnectionOptions {
  url: string;
  /** Any other ioredis option, passed through (these win over the module's settings). */
  options?: RedisOptions;
}

/**
 * Connect to one server by address.
 *
 * @example
 * { host: '10.0.0.5', port: 6379, username: 'app', password: process.env.REDIS_PASSWORD, tls: {} }
 */
export interface HostConnectionOptions {
  host?: string;
  port?: number;
  /** ACL user (Redis 6+). */
  username?: string;
  password?: string;
  db?: number;
  /** TLS options for `tls.connect`; `true` uses the defaults. */
  tls?: TlsOptions | true;
  options?: RedisOptions;
}

/**
 * Connect to a Redis Cluster through any of its nodes.
 *
 * @example
 * { cluster: { nodes: ['10.0.0.1:7000', { host: '10.0.0.2', port: 7000 }] } }
 */
export interface ClusterConnectionOptions {
  cluster: {
    nodes: readonly (string | { host: string; port: number })[];
    /** ioredis Cluster options, passed through (credentials and TLS go in `redisOptions`). */
    options?: ClusterOptions;
  };
}

/**
 * Connect to the master (or a replica) that Sentinel designates.
 *
 * @example
 * { sentinel: { sentinels: ['s1:26379', { host: 's2', port: 26379 }], name: 'mymaster' } }
 */
export interface SentinelConnectionOptions {
  sentinel: {
    sentinels: readonly (string | Partial<SentinelAddress>)[];
    /** The master group name configured in Sentinel. */
    name: string;
    role?: 'master' | 'slave';
    sentinelUsername?: string;
    sentinelPassword?: string;
    username?: string;
    password?: string;
    db?: number;
    /** TLS to the master and replicas. */
    tls?: TlsOptions | true;
    /** TLS to the Sentinels themselves. */
    sentinelTls?: TlsOptions | true;
    options?: RedisOptions;
  };
}

/**
 * Use an ioredis client you created. The module uses it as it is and never closes it.
 *
 * @example
 * { client: existingRedis }
 */
export interface ClientConnectionOptions {
  client: Redis | Cluster;
}

/** Where a connection goes: exactly one of the forms above. */
export type RedisConnectionOptions =
  UrlConnectionOptions | HostConnectionOptions | ClusterConnectionOptions | SentinelConnectionOptions | ClientConnectionOptions;

/** Backoff between reconnect attempts: exponential from `minDelay` to `maxDelay`, with jitter. */
export interface ReconnectOptions {
  /** @default '50ms' */
  minDelay?: Duration;
  /** @default '2s' */
  maxDelay?: Duration;
}

/**
 * The options of `RedisPatternsModule.forRoot()` / `forRootAsync()` that belong to no feature:
 * connections, keys, timeouts and the codec. Each feature adds its own section beside them.
 *
 * @example
 * RedisPatternsModule.forRoot({
 *   connection: { url: process.env.REDIS_URL },
 *   connections: { lockB: { host: 'redis-b' }, lockC: { host: 'redis-c' } },
 *   keyPrefix: 'shop:',
 *   commandTimeout: '500ms',
 *   isGlobal: true,
 * });
 */
export interface CoreModuleOptions {
  /** The main connection, used by every feature unless told otherwise. */
  connection: RedisConnectionOptions;
  /**
   * Further independent connections by name, for example the nodes of a Redlock quorum. The name
   * `default` is taken by `connection`.
   */
  connections?: Record<string, RedisConnectionOptions>;
  /**
   * Prepended to every key the library writes. No `{`, `}` or glob characters.
   * @default 'nrp:'
   */
  keyPrefix?: string;
  /**
   * How long one command may take before it fails with a `CommandTimeoutError` (at most a tenth
   * later: one timer per connection checks the deadlines). Also bounds a command sent while Redis
   * is unreachable. A `commandTimeout` in the ioredis options of a connection is left to ioredis.
   * @default '1s'
   */
  commandTimeout?: Duration;
  /**
   * How long one connection attempt may take; also how long startup waits for the first connection
   * before it goes on without Redis (and logs that it did).
   * @default '5s'
   */
  connectTimeout?: Duration;
  /**
   * Queue commands issued while disconnected and send them after reconnecting. Off by default, so
   * an outage fails commands at once instead of piling them up. When on, each queued command still
   * fails after `commandTimeout`, but may yet be sent after the reconnect.
   * @default false
   */
  offlineQueue?: boolean;
  /**
   * ioredis's `enableAutoPipelining` on the connections the module creates: commands issued in the
   * same tick of the event loop are sent as one pipeline, a turn of the event loop later. The module
   * already writes the commands of a turn together (at most 16 to a write), which measured faster
   * (the bench: autoPipelining at 0.48x of the default with 64 callers). Subscriber and blocking
   * connections, dedicated transaction connections and clients passed in with `{ client }` are
   * left as they are.
   * @default false
   */
  autoPipelining?: boolean;
  /** Backoff between reconnect attempts. The client keeps reconnecting until shutdown. */
  reconnect?: ReconnectOptions;
  /**
   * How long shutdown waits for in-flight commands before it drops the connections.
   * @default '5s'
   */
  shutdownTimeout?: Duration;
  /** How values are serialized. @default new JsonCodec() */
  codec?: RedisCodec;
  /**
   * At startup, read `maxmemory-policy` and warn when it does not suit the features in use.
   * @default true
   */
  checkMaxmemoryPolicy?: boolean;
}

/** The core options after validation, with defaults applied and durations in milliseconds. */
export interface ResolvedCoreOptions {
  connections: ReadonlyMap<string, RedisConnectionOptions>;
  keyPrefix: string;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
  offlineQueue: boolean;
  autoPipelining: boolean;
  reconnect: { minDelayMs: number; maxDelayMs: number };
  shutdownTimeoutMs: number;
  codec: RedisCodec;
  checkMaxmemoryPolicy: boolean;
}

/** The name of the main connection. */
export const DEFAULT_CONNECTION = 'default';

/** Every default of the core options, in one place (each feature keeps its own beside its options). */
export const DEFAULT_CORE_OPTIONS = {
  keyPrefix: 'nrp:',
  commandTimeout: '1s',
  connectTimeout: '5s',
  offlineQueue: false,
  autoPipelining: false,
  reconnect: { minDelay: '50ms', maxDelay: '2s' },
  shutdownTimeout: '5s',
  checkMaxmemoryPolicy: true,
  codec: () => new JsonCodec(),
} as const satisfies Record<string, unknown>;
