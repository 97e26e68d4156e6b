import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { RedisPatternsError, UnknownConnectionError } from './errors.js';
import type { RedisClient } from './redis-client.js';
import { createConnection, createSubscriber, type CreatedConnection } from './redis-connection.factory.js';
import { DEFAULT_CONNECTION, type ResolvedCoreOptions } from './core.options.js';
import { CORE_OPTIONS } from './core.constants.js';
import { ConnectionMetrics } from './connection.metrics.js';
import { RedisMetrics } from './metrics.js';
import { describeOutage, outageOf } from './store-failure.js';

interface ManagedConnection extends CreatedConnection {
  name: string;
  subscriber?: RedisClient;
  /** What the state listeners learned, and how to remove them (a client passed in is left as it was found). */
  watch: StateWatch;
}

interface StateWatch {
  /** The last connection error since the connection was last ready. */
  lastError: Error | undefined;
  unwatch: () => void;
}

type LoggedState = 'connecting' | 'ready' | 'down' | 'closed';

/**
 * Owns the module's Redis connections: the configured ones, and a subscriber connection per
 * connection, created on first use. At shutdown it closes what it created, after in-flight
 * commands finish, and leaves clients passed in with `{ client }` open.
 *
 * @example
 * constructor(private readonly connections: RedisConnections) {}
 * const lockNodes = ['lockA', 'lockB', 'lockC'].map((name) => this.connections.get(name));
 */
@Injectable()
export class RedisConnections implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('RedisPatterns');
  private readonly connections = new Map<string, ManagedConnection>();
  /** Clients whose first connection attempt the startup reports itself. */
  private readonly startingUp = new Set<RedisClient>();
  private shuttingDown = false;
  private readonly metrics: ConnectionMetrics;

  constructor(
    @Inject(CORE_OPTIONS) private readonly options: ResolvedCoreOptions,
    metrics: RedisMetrics,
  ) {
    this.metrics = new ConnectionMetrics(metrics);
    for (const [name, connection] of options.connections) {
      const created = createConnection(name, connection, options);
      // Only the clients the module made are timed: a client passed in is left as it was found.
      if (created.owned) this.metrics.watchCommands(name, created.client);
      this.connections.set(name, { name, ...created, watch: this.watchState(name, created.client) });
    }
  }

  /** The command client of a connection (`'default'` is the main one). */
  get(name: string = DEFAULT_CONNECTION): RedisClient {
    return this.managed(name).client;
  }

  /** Whether the connection is a standalone server, a Cluster or a Sentinel-managed master. */
  mode(name: string = DEFAULT_CONNECTION): CreatedConnection['mode'] {
    return this.managed(name).mode;
  }

  /** The names of every configured connection. */
  names(): string[] {
    return [...this.connections.keys()];
  }

  /**
   * The subscriber connection of a connection, created on the first call. Use it only for
   * (S|P)SUBSCRIBE; it is closed by the module at shutdown.
   */
  subscriber(name: string = DEFAULT_CONNECTION): RedisClient {
    const connection = this.managed(name);
    if (!connection.subscriber) {
      if (this.shuttingDown)
        throw new RedisPatternsError(`Cannot open a subscriber connection for "${name}": the module is shutting down.`);
      connection.subscriber = createSubscriber(connection.client);
      this.watchState(`${name} (subscriber)`, connection.subscriber);
    }
    return connection.subscriber;
  }

  /**
   * Connects the clients the module created. Startup waits at most `connectTimeout` for each; a
   * connection that is not ready by then is logged, and keeps retrying in the background.
   */
  async onModuleInit(): Promise<void> {
    const owned = [...this.connections.values()].filter((connection) => connection.owned);
    await Promise.all(owned.map((connection) => this.connectWithin(connection)));
  }

  /** Closes the connections the module created, once their in-flight commands have finished. */
  async onApplicationShutdown(): Promise<void> {
    this.shuttingDown = true;
    const toClose = [...this.connections.values()].flatMap((connection) => [
      ...(connection.owned ? [connection.client] : []),
      ...(connection.subscriber ? [connection.subscriber] : []),
    ]);
    await Promise.all(toClose.map((client) => this.close(client)));
    for (const connection of this.connections.values()) if (!connection.owned) connection.watch.unwatch();
  }

  private managed(name: string): ManagedConnection {
    const connection = this.connections.get(name);
    if (!connection) throw new UnknownConnectionError(name, this.names());
    return connection;
  }

  /**
   * Connects one client, waiting at most `connectTimeout`, and says what happened: the attempt
   * failed (refused, unknown host...) after so many milliseconds, or it did not finish in time.
   */
  private async connectWithin(connection: ManagedConnection): Promise<void> {
    const started = performance.now();
    this.startingUp.add(connection.client);
    const connected = connection.client.connect().then(
      () => 'ready' as const,
      () => 'failed' as const,
    );
    const outcome = await Promise.race([connected, delay(this.options.connectTimeoutMs, 'timeout' as const)]);
    this.startingUp.delete(connection.client);
    if (outcome === 'ready') return;
    const what =
      outcome === 'failed'
        ? `could not connect (${describeConnectionError(connection.watch.lastError)}) after ${Math.round(performance.now() - started)}ms`
        : `is not ready after ${this.options.connectTimeoutMs}ms`;
    this.logger.warn(
      `Redis connection "${connection.name}" ${what}; starting without it. Commands fail until it connects; it keeps retrying with backoff.`,
    );
  }

  /**
   * QUIT is queued behind in-flight commands, so they finish first; past the timeout, drop the
   * socket. A client that is not connected has nothing in flight: stop its reconnecting at once.
   */
  private async close(client: RedisClient): Promise<void> {
    if (client.status !== 'ready') {
      client.disconnect();
      return;
    }
    const ended = new Promise<boolean>((resolve) => client.once('end', () => resolve(true)));
    client.quit().catch(() => client.disconnect());
    const clean = await Promise.race([ended, delay(this.options.shutdownTimeoutMs, false)]);
    if (!clean) client.disconnect();
  }

  /**
   * Logs each change of a connection's state once, however many commands or retries it affects,
   * with the reason in the library's words.
   */
  private watchState(name: string, client: RedisClient): StateWatch {
    let state: LoggedState = 'connecting';
    let everReady = false;
    const watch: StateWatch = { lastError: undefined, unwatch: () => undefined };
    const moveTo = (next: LoggedState, log: () => void) => {
      if (state === next) return;
      state = next;
      this.metrics.state(name, next === 'ready', next === 'down');
      log();
    };
    const listeners: Record<string, (error: Error) => void> = {
      error: (error: Error) => {
        watch.lastError = error;
      },
      'node error': (error: Error) => {
        watch.lastError = error;
      },
      ready: () => {
        const again = everReady;
        everReady = true;
        watch.lastError = undefined;
        moveTo('ready', () => this.logger.log(`Redis connection "${name}" ${again ? 're' : ''}connected`));
      },
      close: () => {
        if (this.shuttingDown) return;
        // A first attempt that fails at startup is reported by connectWithin, with its duration.
        if (this.startingUp.has(client)) {
          if (state !== 'down') this.metrics.state(name, false, true);
          state = 'down';
          return;
        }
        moveTo('down', () =>
          this.logger.warn(
            `Redis connection "${name}" is unavailable (${describeConnectionError(watch.lastError)}); reconnecting with backoff`,
          ),
        );
      },
      end: () => {
        moveTo('closed', () =>
          this.shuttingDown ? this.logger.log(`Redis connection "${name}" closed`) : this.logger.warn(`Redis connection "${name}" ended`),
        );
      },
    };
    for (const [event, listener] of Object.entries(listeners)) client.on(event, listener);
    watch.unwatch = () => {
      for (const [event, listener] of Object.entries(listeners)) client.off(event, listener);
    };
    return watch;
  }
}

/**
 * Why a connection failed, in the library's words, never ioredis's own message: the socket error
 * with the address it concerns, an outage (see `outageOf`), or the code of the server's refusal.
 */
function describeConnectionError(error: Error | undefined): string {
  if (error === undefined) return 'the connection was closed';
  // A Cluster that could not load its slots carries the last node's error.
  const cause = (error as { lastNodeError?: Error }).lastNodeError ?? error;
  const { code, address, port, hostname } = cause as NodeJS.ErrnoException & { address?: string; port?: number; hostname?: string };
  switch (code) {
    case 'ECONNREFUSED':
      return `connection refused by ${address}:${port}`;
    case 'ECONNRESET':
      return 'connection reset by the server';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host "${hostname}" not found`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `host ${address} unreachable`;
    case 'ETIMEDOUT':
      return 'the connection timed out';
  }
  if (/^All sentinels are unreachable/.test(cause.message)) return 'no Sentinel answered';
  const outage = outageOf(cause);
  if (outage !== undefined) return describeOutage(outage);
  const refusal = /^([A-Z][A-Z_]{2,}) /.exec(cause.message)?.[1];
  if (refusal !== undefined) return `the server refused it (${refusal})`;
  return code === undefined ? 'the connection failed' : `the connection failed (${code})`;
}

function delay<T>(ms: number, value: T): Promise<T> {
  return new Promise((resolve) => setTimeout(resolve, ms, value).unref());
}
