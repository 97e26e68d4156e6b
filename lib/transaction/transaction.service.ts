import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import { CORE_OPTIONS } from '../core/core.constants.js';
import type { ResolvedCoreOptions } from '../core/core.options.js';
import { CrossSlotError, InvalidOptionError, RedisPatternsError } from '../core/errors.js';
import { RedisKeys } from '../core/keys.js';
import { OutageLog } from '../core/outage-log.js';
import { CommandTimeoutError } from '../core/command-timeout.js';
import { ClusterNotConnectedError, isCluster, type RedisClient } from '../core/redis-client.js';
import { backoffDelay, createDedicatedConnection } from '../core/redis-connection.factory.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { outageOf, RedisUnavailableError } from '../core/store-failure.js';
import { toTextArgument } from '../core/validation.js';
import { Transaction, TransactionAbortSignal, type TransactionKeys } from './transaction.context.js';
import { TransactionConflictError, TransactionPoolTimeoutError } from './transaction.exception.js';
import { TRANSACTION_OPTIONS, type OptimisticOptions, type TransactionResult } from './transaction.options.js';
import { resolveOptimisticOptions, type ResolvedTransactionOptions } from './transaction.options-validator.js';
import { TransactionPool, TransactionPoolClosedError } from './transaction.pool.js';

/**
 * A command of the MULTI failed (WRONGTYPE, a bad argument...). Redis does not roll a transaction
 * back: when `committed` is true the other commands were applied. `errors` has the failure of
 * each queued command (undefined for those that succeeded).
 */
export class TransactionCommandError extends RedisPatternsError {
  constructor(
    readonly committed: boolean,
    readonly errors: readonly (Error | undefined)[],
    options?: { cause?: unknown },
  ) {
    const first = errors.find((error) => error !== undefined);
    super(
      committed
        ? `Optimistic transaction committed, but a command failed (the others were applied): ${first?.message}`
        : `Optimistic transaction refused by Redis, nothing was written: ${first?.message ?? String(options?.cause)}`,
      options,
    );
  }
}

/** What one attempt came to. */
type Attempt<T> =
  | { outcome: 'committed'; result: T }
  | { outcome: 'aborted'; reason: string }
  | { outcome: 'conflict' }
  | { outcome: 'redirected'; error: unknown };

/** How many Cluster redirections (MOVED, ASK, TRYAGAIN) one transaction follows, beside its attempts. */
const MAX_REDIRECTIONS = 5;

/**
 * Optimistic transactions (WATCH, reads, MULTI/EXEC): read some keys, decide, write, and have the
 * writes applied only if none of the watched keys changed meanwhile; otherwise the body runs again,
 * after a jittered exponential backoff, up to `maxAttempts` times. Each running transaction has a
 * connection of its own from a small pool (`transaction.poolSize`), since WATCH is the state of a
 * connection; on a Cluster it goes to the master of the keys' one slot.
 *
 * @example
 * const { committed, attempts } = await this.transactions.optimistic(['account:1', 'account:2'], async (tx) => {
 *   const balance = Number(await tx.get('account:1'));
 *   if (balance < 30) tx.abort('insufficient funds');
 *   tx.incrby('account:1', -30);
 *   tx.incrby('account:2', 30);
 * });
 */
@Injectable()
export class TransactionService implements OnApplicationShutdown {
  private readonly client: RedisClient;
  private readonly pool: TransactionPool;
  private readonly outage = new OutageLog(
    new Logger('RedisPatterns:Transaction'),
    'optimistic transactions',
    'they reject with RedisUnavailableError (503)',
  );
  private readonly poolSize: number;

  constructor(
    connections: RedisConnections,
    private readonly keys: RedisKeys,
    @Inject(CORE_OPTIONS) core: ResolvedCoreOptions,
    @Inject(TRANSACTION_OPTIONS) options: ResolvedTransactionOptions,
  ) {
    this.client = connections.get();
    this.poolSize = options.poolSize;
    this.pool = new TransactionPool(options.poolSize, options.acquireTimeoutMs, (address) => this.open(address, core.commandTimeoutMs));
  }

  /** How many dedicated connections are open (leased or idle). */
  get openConnections(): number {
    return this.pool.openConnections;
  }

  /**
   * Runs `body` as an optimistic transaction on `keys` (logical keys: the module's `keyPrefix` is
   * prepended). Resolves `{ committed: true, attempts, result }` with the body's return value once
   * its writes are applied, or `{ committed: false, attempts, reason }` when it called
   * `tx.abort(reason)` (nothing written). A body that throws writes nothing; its error is rethrown
   * as is.
   *
   * @throws TransactionConflictError (409) when the keys changed on each of `maxAttempts` attempts.
   * @throws TransactionPoolTimeoutError (503) when no connection was free within `acquireTimeout`.
   * @throws TransactionPoolClosedError (503) once application shutdown began.
   * @throws RedisUnavailableError (503) when Redis cannot be reached (at once when the module's
   * connection is not ready) or does not answer in time (a connection not opened within `commandTimeout` too).
   * @throws RedisUnavailableError (503, `failover`) on a Cluster that redirected it (MOVED, ASK,
   * TRYAGAIN) more than 5 times; redirections are followed (slot map refreshed) without using attempts.
   * @throws CrossSlotError on a Cluster when the keys are not all in one slot (use a `{hash tag}`).
   * @example
   * const outcome = await this.transactions.optimistic('stock:42', async (tx) => {
   *   const left = Number(await tx.get('stock:42'));
   *   if (left === 0) tx.abort('sold out');
   *   tx.incrby('stock:42', -1);
   *   return left - 1;
   * }, { maxAttempts: 20 });
   */
  async optimistic<T>(
    keys: string | readonly string[],
    body: (tx: Transaction) => Promise<T> | T,
    options?: OptimisticOptions,
  ): Promise<TransactionResult<T>> {
    const given = typeof keys === 'string' ? [keys] : keys;
    if (!Array.isArray(given) || given.length === 0) throw new InvalidOptionError('keys', 'a key or a non-empty array of keys', keys);
    if (typeof body !== 'function') throw new InvalidOptionError('body', 'a function of the transaction', body);
    const watched = given.map((key) => this.keys.prefix + toTextArgument('keys', key));
    const settings = resolveOptimisticOptions(options);
    const slot = isCluster(this.client) ? oneSlot(watched, given) : undefined;
    let redirections = 0;
    for (let attempt = 1; ;) {
      const outcome = await this.attempt(given, watched, slot, body);
      if (outcome.outcome === 'committed') return { committed: true, attempts: attempt, result: outcome.result };
      if (outcome.outcome === 'aborted') return { committed: false, attempts: attempt, result: undefined, reason: outcome.reason };
      if (outcome.outcome === 'redirected') {
        // A slot moving or a failover is not a conflict: it has its own budget, then it is an outage.
        if (++redirections > MAX_REDIRECTIONS) throw this.outage.toError(outcome.error);
        await new Promise((resolve) => setTimeout(resolve, backoffDelay(redirections, 10, 200)));
        continue;
      }
      if (attempt >= settings.maxAttempts) throw new TransactionConflictError(given, attempt);
      attempt++;
      const { minDelayMs, maxDelayMs } = settings.backoff;
      await new Promise((resolve) => setTimeout(resolve, backoffDelay(attempt, minDelayMs, maxDelayMs)));
    }
  }

  /** Closes the dedicated connections at shutdown (those in use once their transaction ends). */
  async onApplicationShutdown(): Promise<void> {
    await this.pool.close();
  }

  private async attempt<T>(
    given: readonly string[],
    watched: readonly string[],
    slot: number | undefined,
    body: (tx: Transaction) => Promise<T> | T,
  ): Promise<Attempt<T>> {
    if (this.pool.isClosed) throw new TransactionPoolClosedError();
    // Never wait on a connection known to be down (dropped packets would cost connectTimeout each).
    if (this.client.status !== 'ready') {
      this.outage.noteOutage('disconnected');
      throw new RedisUnavailableError('optimistic transactions', 'disconnected');
    }
    const address = slot === undefined ? 'default' : this.masterOf(slot);
    const timeout = (waitedMs: number) => new TransactionPoolTimeoutError(given, this.poolSize, waitedMs);
    const connection = await this.pool.acquire(address, timeout).catch((error: unknown) => {
      throw this.outage.toError(error);
    });
    const lease = { reusable: false };
    try {
      return await this.run(connection, lease, { prefix: this.keys.prefix, slot, watched: given }, watched, body);
    } catch (error) {
      if (error instanceof BodyFailure) throw error.error;
      const redirect = isRedirect(error) ? error : (error as { previousErrors?: unknown[] }).previousErrors?.find(isRedirect);
      if (redirect !== undefined) return this.refreshSlots(redirect);
      const refused = (error as { previousErrors?: Error[] }).previousErrors;
      if (refused !== undefined) throw new TransactionCommandError(false, refused, { cause: error });
      throw this.outage.toError(error);
    } finally {
      this.pool.release(address, connection, lease.reusable);
    }
  }

  /**
   * WATCH, the body, then MULTI/EXEC in one round trip. Sets `lease.reusable` once the connection
   * is known to be clean (nothing watched, no reply pending). A failure of the body comes wrapped
   * in a `BodyFailure`, to be rethrown as is.
   */
  private async run<T>(
    connection: Redis,
    lease: { reusable: boolean },
    keys: TransactionKeys,
    watched: readonly string[],
    body: (tx: Transaction) => Promise<T> | T,
  ): Promise<Attempt<T>> {
    // Not awaited alone: the first read is sent behind it and both come back in one round trip.
    const watching = connection.watch(...watched);
    watching.catch(() => undefined);
    const tx = new Transaction(connection, keys, (error) => (isRedirect(error) ? error : this.outage.toError(error)), watching);
    let result: T;
    try {
      result = await body(tx);
    } catch (error) {
      tx.close();
      if (isRedirect(tx.failure)) return this.refreshSlots(tx.failure);
      if (outageOf(tx.failure) === undefined) lease.reusable = await connection.unwatch().then(succeeded, failed);
      if (error instanceof TransactionAbortSignal) return { outcome: 'aborted', reason: error.reason };
      throw new BodyFailure(error);
    }
    const queued = tx.close();
    await watching;
    if (tx.abortReason !== undefined) {
      // The body caught its own abort and returned: still aborted.
      await connection.unwatch();
      lease.reusable = true;
      return { outcome: 'aborted', reason: tx.abortReason };
    }
    const multi = connection.multi();
    for (const [command, ...args] of queued) multi.call(String(command), ...args);
    const replies = await multi.exec();
    lease.reusable = true;
    this.outage.succeeded();
    if (replies === null) return { outcome: 'conflict' };
    const errors = replies.map(([error]) => error ?? undefined);
    if (errors.some((error) => error !== undefined)) throw new BodyFailure(new TransactionCommandError(true, errors));
    return { outcome: 'committed', result };
  }

  /** The address of the master of `slot`, from the Cluster's slot map. */
  private masterOf(slot: number): string {
    const master = (this.client as Cluster).slots[slot]?.[0];
    if (master === undefined) throw this.outage.toError(new ClusterNotConnectedError(`no master is known for slot ${slot}`));
    return master;
  }

  /** Redis redirected the transaction (MOVED, ASK, TRYAGAIN): reload the Cluster's slot map; the attempt is run again. */
  private async refreshSlots(error: unknown): Promise<Attempt<never>> {
    if (isCluster(this.client)) {
      const cluster: Cluster = this.client;
      await new Promise<void>((resolve) => cluster.refreshSlotsCache(() => resolve()));
    }
    return { outcome: 'redirected', error };
  }

  /** Opens a dedicated connection, within `commandTimeout` (past it: a timeout outage). */
  private async open(address: string, commandTimeoutMs: number): Promise<Redis> {
    const connection = createDedicatedConnection(this.client, commandTimeoutMs, 'tx', isCluster(this.client) ? address : undefined);
    // Failures are reported by the transaction that meets them (once per outage), never as unhandled events.
    connection.on('error', () => undefined);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        connection.connect(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new CommandTimeoutError('connect', commandTimeoutMs)), commandTimeoutMs);
        }),
      ]);
    } catch (error) {
      connection.disconnect();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    return connection;
  }
}

/** The body threw, or a command of the MULTI failed: the error is rethrown as is. */
class BodyFailure {
  constructor(readonly error: unknown) {}
}

const succeeded = () => true;
const failed = () => false;

/** Whether Redis redirected the command: MOVED (the slot lives on another master now), ASK (it is migrating), TRYAGAIN (during a migration). */
function isRedirect(error: unknown): boolean {
  return error instanceof Error && /^(MOVED|ASK|TRYAGAIN) /.test(error.message);
}

/** The one slot of `keys` on a Cluster, or a `CrossSlotError` naming them (as given) before anything is sent. */
function oneSlot(keys: readonly string[], given: readonly string[]): number {
  const slot = calculateSlot(keys[0]);
  if (keys.some((key) => calculateSlot(key) !== slot)) throw new CrossSlotError('optimistic', given, 'Transaction');
  return slot;
}
