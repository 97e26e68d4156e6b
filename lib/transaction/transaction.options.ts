import type { Duration } from '../core/duration.js';

/**
 * Options of optimistic transactions, under `transaction` in the module options. Each running
 * transaction holds a connection of its own (WATCH is the state of one connection): at most
 * `poolSize` of them at a time, opened on first use and closed at shutdown.
 *
 * @example
 * RedisPatternsModule.forRoot({ connection, transaction: { poolSize: 8, acquireTimeout: '2s' } });
 */
export interface TransactionOptions {
  /** How many transactions may run at once (each on its own connection). @default 4 */
  poolSize?: number;
  /**
   * How long a transaction waits for a free connection before it fails with a
   * `TransactionPoolTimeoutError` (503).
   * @default '1s'
   */
  acquireTimeout?: Duration;
}

/**
 * Options of one `TransactionService.optimistic` call.
 *
 * @example
 * await this.transactions.optimistic(['account:1', 'account:2'], body, { maxAttempts: 20, backoff: { minDelay: '2ms', maxDelay: '100ms' } });
 */
export interface OptimisticOptions {
  /** How many times the body runs at most before a `TransactionConflictError` (409). @default 10 */
  maxAttempts?: number;
  /** The pause before each retry: exponential from `minDelay` to `maxDelay`, with jitter. @default { minDelay: '5ms', maxDelay: '250ms' } */
  backoff?: { minDelay?: Duration; maxDelay?: Duration };
}

/**
 * How an optimistic transaction ended: `committed` with the body's return value, or not (the body
 * called `tx.abort(reason)`: nothing was written, `result` is undefined).
 */
export type TransactionResult<T> =
  { committed: true; attempts: number; result: T } | { committed: false; attempts: number; result: undefined; reason: string };

/** Injection token of the resolved `transaction` section (`ResolvedTransactionOptions`). */
export const TRANSACTION_OPTIONS = Symbol('RedisPatterns:TransactionOptions');
