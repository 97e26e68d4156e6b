import { HttpException, HttpStatus } from '@nestjs/common';
import type { Redis } from 'ioredis';

/** A connection of the pool, and the server ("host:port", or `'default'`) it goes to. */
interface PooledConnection {
  address: string;
  connection: Redis;
}

/** A transaction waiting for a free connection. */
interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
  timer: NodeJS.Timeout;
}

/**
 * The pool was asked for a connection after shutdown began. Nothing was sent. Like
 * `TransactionPoolTimeoutError`, a Nest `HttpException`, so a controller answers 503 Service
 * Unavailable.
 */
export class TransactionPoolClosedError extends HttpException {
  constructor() {
    super({ statusCode: HttpStatus.SERVICE_UNAVAILABLE, message: 'Service Unavailable' }, HttpStatus.SERVICE_UNAVAILABLE);
    this.message = 'Optimistic transactions cannot start: the module is shutting down.';
    this.name = 'TransactionPoolClosedError';
  }
}

/**
 * Dedicated connections for transactions, at most `size` open at once: a transaction leases one,
 * uses it alone (WATCH, reads, MULTI/EXEC) and gives it back. Connections are opened on demand by
 * `open`, to the server a transaction needs (a Cluster's masters each have their own); an idle one
 * to another server is closed to make room. A broken connection is dropped, never reused.
 */
export class TransactionPool {
  private readonly idle: PooledConnection[] = [];
  private readonly waiters: Waiter[] = [];
  private leased = 0;
  private closed = false;

  constructor(
    private readonly size: number,
    private readonly acquireTimeoutMs: number,
    private readonly open: (address: string) => Promise<Redis>,
  ) {}

  /** Whether shutdown began: every acquire rejects with a TransactionPoolClosedError. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** How many connections are open (leased or idle), for tests and health. */
  get openConnections(): number {
    return this.leased + this.idle.length;
  }

  /**
   * A connection to `address` for one transaction, waiting up to `acquireTimeoutMs` for a free
   * place (past it, rejects with `timeoutError(waitedMs)`). Rejects with what `open` rejects with
   * when no connection can be made.
   */
  async acquire(address: string, timeoutError: (waitedMs: number) => unknown): Promise<Redis> {
    if (this.closed) throw new TransactionPoolClosedError();
    await this.place(timeoutError);
    try {
      const index = this.idle.findIndex((pooled) => pooled.address === address && pooled.connection.status === 'ready');
      if (index >= 0) return this.idle.splice(index, 1)[0].connection;
      this.dropBroken();
      // Make room: the oldest idle connection (to another server) goes.
      if (this.leased + this.idle.length > this.size) this.idle.shift()?.connection.disconnect();
      return await this.open(address);
    } catch (error) {
      this.handOver();
      throw error;
    }
  }

  /** Gives a connection back: kept for the next transaction when `reusable` (its state is clean), closed otherwise. */
  release(address: string, connection: Redis, reusable: boolean): void {
    if (reusable && !this.closed && connection.status === 'ready') this.idle.push({ address, connection });
    else connection.disconnect();
    this.handOver();
  }

  /** Closes the idle connections, refuses new leases, and closes leased ones when they come back. */
  async close(): Promise<void> {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new TransactionPoolClosedError());
    }
    await Promise.all(this.idle.splice(0).map(({ connection }) => connection.quit().catch(() => connection.disconnect())));
  }

  /** Takes a place among the `size` leases, waiting for one to be handed over if all are taken. */
  private place(timeoutError: (waitedMs: number) => unknown): Promise<void> {
    if (this.leased < this.size) {
      this.leased++;
      return Promise.resolve();
    }
    const started = performance.now();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(timeoutError(Math.round(performance.now() - started)));
        }, this.acquireTimeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** A lease ended: its place goes to the first waiter, or is freed. */
  private handOver(): void {
    const next = this.waiters.shift();
    if (next === undefined) {
      this.leased--;
      return;
    }
    clearTimeout(next.timer);
    next.resolve();
  }

  private dropBroken(): void {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      if (this.idle[i].connection.status !== 'ready') this.idle.splice(i, 1)[0].connection.disconnect();
    }
  }
}
