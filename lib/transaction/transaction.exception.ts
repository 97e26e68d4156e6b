import { HttpException, HttpStatus } from '@nestjs/common';

/** How errors name a transaction: its watched keys (as given, without the prefix), quoted. */
function keyList(keys: readonly string[]): string {
  return keys.map((key) => `"${key}"`).join(', ');
}

/**
 * An optimistic transaction found its watched keys changed by someone else on every one of its
 * `maxAttempts` attempts, and wrote nothing. Like `LockNotAcquiredError`, a Nest `HttpException`
 * (rather than a `RedisPatternsError`), so a controller answers 409 Conflict.
 *
 * @example
 * try { await this.transactions.optimistic(['stock:42'], reserve, { maxAttempts: 5 }); }
 * catch (error) { if (error instanceof TransactionConflictError) return this.tryLater(error.keys); throw error; }
 */
export class TransactionConflictError extends HttpException {
  constructor(
    /** The watched keys, as given to `optimistic` (without the module prefix). */
    readonly keys: readonly string[],
    readonly attempts: number,
  ) {
    const message = `Optimistic transaction on ${keyList(keys)} gave up after ${attempts} attempts: the keys kept changing`;
    super({ statusCode: HttpStatus.CONFLICT, message }, HttpStatus.CONFLICT);
    this.name = 'TransactionConflictError';
  }
}

/**
 * Every connection of the transaction pool stayed busy for `acquireTimeout`: too many
 * transactions at once for `transaction.poolSize`. Nothing was sent. A Nest `HttpException`, so a
 * controller answers 503 Service Unavailable (the app is overloaded; Redis may be fine).
 *
 * @example
 * RedisPatternsModule.forRoot({ connection, transaction: { poolSize: 16, acquireTimeout: '2s' } });
 */
export class TransactionPoolTimeoutError extends HttpException {
  constructor(
    readonly keys: readonly string[],
    readonly poolSize: number,
    readonly waitedMs: number,
  ) {
    const message = `Optimistic transaction on ${keyList(keys)} found no free connection within ${waitedMs}ms (transaction.poolSize is ${poolSize})`;
    super({ statusCode: HttpStatus.SERVICE_UNAVAILABLE, message: 'Service Unavailable' }, HttpStatus.SERVICE_UNAVAILABLE);
    this.message = message;
    this.name = 'TransactionPoolTimeoutError';
  }
}
