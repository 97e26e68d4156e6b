import { Cluster, Redis, type ClusterOptions, type RedisOptions, type SentinelAddress } from 'ioredis';
import { deliverAtMostOnce } from './cluster-delivery.js';
import { enforceCommandTimeout } from './command-timeout.js';
import { isCluster, type RedisClient } from './redis-client.js';
import { batchWrites } from './write-batching.js';
import type { ClientConnectionOptions, RedisConnectionOptions, ResolvedCoreOptions } from './core.options.js';

/** How a connection is used: `mode` for health and docs, `owned` when the module must close it. */
export interface CreatedConnection {
  client: RedisClient;
  mode: 'standalone' | 'cluster' | 'sentinel';
  owned: boolean;
}

/**
 * Creates the ioredis client for one configured connection, with the module's bounded-failure
 * settings: command and connect timeouts (the command timeout with one timer per client), the offline queue off unless asked for, and reconnects
 * with capped exponential backoff and jitter. Clients are created with `lazyConnect`; the module
 * connects them at startup.
 */
export function createConnection(name: string, connection: RedisConnectionOptions, options: ResolvedCoreOptions): CreatedConnection {
  if ('client' in connection) {
    return { client: connection.client, mode: isCluster(connection.client) ? 'cluster' : 'standalone', owned: false };
  }
  const created = createClient(name, connection, options);
  // A `commandTimeout` given in the ioredis options themselves is left to ioredis.
  const own = isCluster(created.client) ? created.client.options.redisOptions?.commandTimeout : created.client.options.commandTimeout;
  if (own === undefined) enforceCommandTimeout(created.client, options.commandTimeoutMs);
  batchWrites(created.client);
  return created;
}

function createClient(
  name: string,
  connection: Exclude<RedisConnectionOptions, ClientConnectionOptions>,
  options: ResolvedCoreOptions,
): CreatedConnection {
  const common = commonOptions(name, options);
  if ('cluster' in connection) {
    const { nodes, options: clusterOptions = {} } = connection.cluster;
    const client = new Cluster(nodes.map(toAddress), {
      enableOfflineQueue: options.offlineQueue,
      // A Cluster pipelines per node itself; its node connections are not auto-pipelined twice.
      enableAutoPipelining: options.autoPipelining,
      clusterRetryStrategy: common.retryStrategy,
      lazyConnect: true,
      ...clusterOptions,
      redisOptions: { ...withoutNodeOnly(common), enableAutoPipelining: false, ...clusterOptions.redisOptions },
    });
    deliverAtMostOnce(client);
    return { client, mode: 'cluster', owned: true };
  }
  if ('sentinel' in connection) {
    const { sentinels, name: masterName, tls, sentinelTls, options: extra, ...auth } = connection.sentinel;
    const client = new Redis({
      ...common,
      ...auth,
      sentinels: sentinels.map(toAddress),
      name: masterName,
      // ioredis applies `tls` to the master only with this flag; the Sentinels have their own.
      ...(tls === undefined ? {} : { ...tlsOptions(tls), enableTLSForSentinelMode: true }),
      ...(sentinelTls === undefined ? {} : { sentinelTLS: sentinelTls === true ? {} : sentinelTls }),
      ...extra,
    });
    return { client, mode: 'sentinel', owned: true };
  }
  if ('url' in connection) {
    return { client: new Redis(connection.url, { ...common, ...connection.options }), mode: 'standalone', owned: true };
  }
  const { tls, options: extra, ...server } = connection;
  return { client: new Redis({ ...common, ...server, ...tlsOptions(tls), ...extra }), mode: 'standalone', owned: true };
}

/**
 * A second connection of the same kind for SUBSCRIBE, which blocks a connection for anything else.
 * Subscriptions made while disconnected wait for the connection (however many reconnect attempts
 * that takes), and ioredis restores every subscription after a reconnect.
 */
export function createSubscriber(client: RedisClient): RedisClient {
  // No command timeout either: a subscription waits for the connection rather than failing.
  const queueUntilConnected = {
    enableOfflineQueue: true,
    lazyConnect: false,
    maxRetriesPerRequest: null,
    commandTimeout: undefined,
    enableAutoPipelining: false,
  };
  if (!isCluster(client)) return client.duplicate(queueUntilConnected);
  // Sharded subscribers: one connection per master, so SSUBSCRIBE reaches the shard that owns the channel.
  return client.duplicate(undefined, {
    enableOfflineQueue: true,
    enableAutoPipelining: false,
    lazyConnect: false,
    shardedSubscribers: true,
    redisOptions: { ...client.options.redisOptions, maxRetriesPerRequest: null, commandTimeout: undefined },
  });
}

/**
 * A connection of the same kind for one blocking reader (XREADGROUP BLOCK, BLPOP...), which holds
 * its connection for as long as it blocks. Its command timeout allows for the blocking time.
 */
export function createBlockingConnection(client: RedisClient, blockMs: number, commandTimeoutMs: number): RedisClient {
  const commandTimeout = blockMs + commandTimeoutMs;
  if (!isCluster(client)) return client.duplicate({ commandTimeout, lazyConnect: false, enableAutoPipelining: false });
  return client.duplicate(undefined, {
    lazyConnect: false,
    enableAutoPipelining: false,
    redisOptions: { ...client.options.redisOptions, commandTimeout },
  });
}

/**
 * A standalone connection of its own, for state a connection holds while it is used (WATCH): to
 * the server of `client`, or on a Cluster to the node `node` ("host:port", a master from the slot
 * map), with the client's credentials, TLS, connect timeout and command timeout. It never
 * reconnects, queues nothing offline and is never auto-pipelined: its user drops it when it breaks.
 * It is created with `lazyConnect`; the caller connects it.
 *
 * @example
 * const watcher = createDedicatedConnection(connections.get(), options.commandTimeoutMs, 'tx');
 * await watcher.connect();
 */
export function createDedicatedConnection(client: RedisClient, commandTimeoutMs: number, role: string, node?: string): Redis {
  const own = {
    lazyConnect: true,
    enableOfflineQueue: false,
    enableAutoPipelining: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  } satisfies RedisOptions;
  let connection: Redis;
  if (isCluster(client)) {
    if (node === undefined) throw new TypeError('createDedicatedConnection: a Cluster needs the address of a node');
    const { host, port } = toAddress(node);
    const base = client.options.redisOptions ?? {};
    connection = new Redis({ ...base, ...own, host, port, connectionName: `${base.connectionName ?? 'nrp'}:${role}` });
  } else {
    connection = client.duplicate({ ...own, connectionName: `${client.options.connectionName ?? 'nrp'}:${role}` });
  }
  if (connection.options.commandTimeout === undefined) enforceCommandTimeout(connection, commandTimeoutMs);
  return connection;
}

/**
 * A RESP2 connection of its own for Redis's invalidation messages (client-side caching): to the
 * server of `client` (through its Sentinels if it has them), or on a Cluster to the node `node`
 * ("host:port"), with the client's credentials and TLS. RESP2 because a RESP2 subscriber is the
 * only redirect target whose invalidations ioredis delivers (it drops RESP3 `invalidate` pushes).
 * It reconnects with the module's backoff, never resubscribes by itself (tracking must be turned
 * on again first, on the new connection), queues nothing offline, and times out every command.
 * It is created with `lazyConnect`; the caller connects it.
 */
export function createInvalidationConnection(client: RedisClient, options: ResolvedCoreOptions, node?: string): Redis {
  const { minDelayMs, maxDelayMs } = options.reconnect;
  const own = {
    protocol: 2,
    lazyConnect: true,
    autoResubscribe: false,
    enableOfflineQueue: false,
    enableAutoPipelining: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    readOnly: false,
    retryStrategy: (attempt: number) => backoffDelay(attempt, minDelayMs, maxDelayMs),
  } satisfies RedisOptions;
  let connection: Redis;
  if (isCluster(client)) {
    if (node === undefined) throw new TypeError('createInvalidationConnection: a Cluster needs the address of a node');
    const base = client.options.redisOptions ?? {};
    connection = new Redis({ ...base, ...own, ...toAddress(node), connectionName: `${base.connectionName ?? 'nrp'}:tracking` });
  } else {
    connection = client.duplicate({ ...own, connectionName: `${client.options.connectionName ?? 'nrp'}:tracking` });
  }
  if (connection.options.commandTimeout === undefined) enforceCommandTimeout(connection, options.commandTimeoutMs);
  return connection;
}

function commonOptions(name: string, options: ResolvedCoreOptions): RedisOptions & Required<Pick<RedisOptions, 'retryStrategy'>> {
  const { minDelayMs, maxDelayMs } = options.reconnect;
  return {
    connectionName: `nrp:${name}`,
    // At most once: a command in flight when the connection drops fails rather than being re-sent
    // after the reconnect (a rate-limit debit or a stream write would otherwise count twice).
    autoResendUnfulfilledCommands: false,
    connectTimeout: options.connectTimeoutMs,
    enableOfflineQueue: options.offlineQueue,
    maxRetriesPerRequest: options.offlineQueue ? 1 : 0,
    enableAutoPipelining: options.autoPipelining,
    lazyConnect: true,
    // Keep reconnecting for as long as the app runs, never more often than the backoff allows.
    retryStrategy: (attempt: number) => backoffDelay(attempt, minDelayMs, maxDelayMs),
  };
}

/** Capped exponential backoff with "equal jitter": between half and all of the capped delay. */
export function backoffDelay(attempt: number, minDelayMs: number, maxDelayMs: number): number {
  const capped = Math.min(maxDelayMs, minDelayMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(capped / 2 + Math.random() * (capped / 2));
}

function withoutNodeOnly(options: RedisOptions): ClusterOptions['redisOptions'] {
  const { retryStrategy: _retry, enableOfflineQueue: _queue, lazyConnect: _lazy, ...rest } = options;
  return rest;
}

function toAddress(node: string | Partial<SentinelAddress>): Partial<SentinelAddress> {
  if (typeof node !== 'string') return node;
  const separator = node.lastIndexOf(':');
  return { host: node.slice(0, separator), port: Number(node.slice(separator + 1)) };
}

function tlsOptions(tls: RedisOptions['tls'] | true | undefined): Pick<RedisOptions, 'tls'> {
  if (tls === undefined) return {};
  return { tls: tls === true ? {} : tls };
}
