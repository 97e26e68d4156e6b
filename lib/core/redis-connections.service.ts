import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { RedisPatternsError, UnknownConnectionError } from './errors.js';
import type { RedisClient } from './redis-client.js';
import { createConnection, createSubscriber, type CreatedConnection } from './redis-connection.factory.js';
import { DEFAULT_CONNECTION, type ResolvedRedisPatternsOptions } from './redis-patterns.options.js';
import { RESOLVED_OPTIONS } from './redis-patterns.constants.js';

interface ManagedConnection extends CreatedConnection {
  name: string;
  subscriber?: RedisClient;
  /** Removes the state listeners, so a client passed in is left as it was found. */
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
  private shuttingDown = false;

  constructor(@Inject(RESOLVED_OPTIONS) private readonly options: ResolvedRedisPatternsOptions) {
    for (const [name, connection] of options.connections) {
      const created = createConnection(name, connection, options);
      this.connections.set(name, { name, ...created, unwatch: this.watchState(name, created.client) });
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
      if (this.shuttingDown) throw new RedisPatternsError(`Cannot open a subscriber connection for "${name}": the module is shutting down.`);
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
    for (const connection of this.connections.values()) if (!connection.owned) connection.unwatch();
  }

  private managed(name: string): ManagedConnection {
    const connection = this.connections.get(name);
    if (!connection) throw new UnknownConnectionError(name, this.names());
    return connection;
  }

  private async connectWithin(connection: ManagedConnection): Promise<void> {
    const connected = connection.client.connect().then(
      () => true,
      () => false,
    );
    const ready = await Promise.race([connected, delay(this.options.connectTimeoutMs, false)]);
    if (!ready) {
      this.logger.warn(
        `Redis connection "${connection.name}" is not ready after ${this.options.connectTimeoutMs}ms; starting without it. ` +
          'Commands fail until it connects; it keeps retrying with backoff.',
      );
    }
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
   * Logs each change of a connection's state once, however many commands or retries it affects.
   * Returns a function that removes the listeners.
   */
  private watchState(name: string, client: RedisClient): () => void {
    let state: LoggedState = 'connecting';
    let lastError: string | undefined;
    const moveTo = (next: LoggedState, log: () => void) => {
      if (state === next) return;
      state = next;
      log();
    };
    const listeners: Record<string, (error: Error) => void> = {
      error: (error: Error) => {
        lastError = error.message;
      },
      'node error': (error: Error) => {
        lastError = error.message;
      },
      ready: () => {
        const wasDown = state === 'down';
        lastError = undefined;
        moveTo('ready', () => this.logger.log(`Redis connection "${name}" ${wasDown ? 're' : ''}connected`));
      },
      close: () => {
        if (this.shuttingDown) return;
        moveTo('down', () => this.logger.warn(`Redis connection "${name}" is unavailable${lastError ? ` (${lastError})` : ''}; reconnecting with backoff`));
      },
      end: () => {
        moveTo('closed', () => (this.shuttingDown ? this.logger.log(`Redis connection "${name}" closed`) : this.logger.warn(`Redis connection "${name}" ended`)));
      },
    };
    for (const [event, listener] of Object.entries(listeners)) client.on(event, listener);
    return () => {
      for (const [event, listener] of Object.entries(listeners)) client.off(event, listener);
    };
  }
}

function delay<T>(ms: number, value: T): Promise<T> {
  return new Promise((resolve) => setTimeout(resolve, ms, value).unref());
}
