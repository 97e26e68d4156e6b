import calculateSlot from 'cluster-key-slot';
import type { Redis } from 'ioredis';
import { toTimerMilliseconds, type Duration } from '../core/duration.js';
import { CrossSlotError, RedisPatternsError } from '../core/errors.js';
import { toTextArgument } from '../core/validation.js';

/** An argument of a raw command (`tx.read`, `tx.write`). */
export type TransactionArgument = string | number | Buffer;

/** Thrown by `tx.abort` to leave the body; caught by `optimistic`, never seen by callers. */
export class TransactionAbortSignal {
  constructor(readonly reason: string) {}
}

/** How a transaction's keys are made and checked: the module prefix, and on a Cluster the one slot allowed. */
export interface TransactionKeys {
  prefix: string;
  /** The slot of the watched keys on a Cluster; undefined on a standalone server. */
  slot: number | undefined;
  /** The watched keys as given, for errors. */
  watched: readonly string[];
}

/**
 * What the body of `TransactionService.optimistic` works with. Reads run at once on the
 * transaction's own connection, where the keys are WATCHed; writes are queued and sent in one
 * MULTI/EXEC after the body returns, only if no watched key changed meanwhile. Reads therefore see
 * the data as it was before the transaction, never its own queued writes.
 *
 * Keys are logical: the module's `keyPrefix` is prepended as is (`tx.get('account:1')` reads
 * `<prefix>account:1`), so `{hash tags}` in them keep working. On a Cluster every key must be in
 * the slot of the watched keys (else a `CrossSlotError`). Values are Redis strings, not encoded
 * with the module's codec. The raw `read` and `write` take their arguments as they are: build keys
 * with `tx.key(name)`.
 *
 * @example
 * await transactions.optimistic(['account:1', 'account:2'], async (tx) => {
 *   const [from, to] = (await tx.mget('account:1', 'account:2')).map(Number);
 *   if (from < 10) tx.abort('insufficient funds');
 *   tx.incrby('account:1', -10);
 *   tx.incrby('account:2', 10);
 * });
 */
export class Transaction {
  private readonly queued: TransactionArgument[][] = [];
  private open = true;
  /** The first error of a read, which decides whether the attempt is retried (a MOVED) and the connection kept. */
  failure: unknown;
  /** Set by `abort`. */
  abortReason: string | undefined;

  constructor(
    private readonly connection: Redis,
    private readonly keys: TransactionKeys,
    /** What a failed read rejects with (an outage becomes a `RedisUnavailableError`). */
    private readonly toError: (error: unknown) => unknown,
    /** The WATCH, sent before any read but not awaited alone: a read waits for both, in one round trip. */
    private readonly watching: Promise<unknown>,
  ) {}

  /**
   * The full Redis key of a logical key: the module prefix, then `name`. Use it for the keys of
   * `read` and `write`.
   * @example
   * await tx.read('GETRANGE', tx.key('log:7'), 0, 99);
   */
  key(name: string): string {
    const key = this.keys.prefix + toTextArgument('key', name);
    if (this.keys.slot !== undefined && calculateSlot(key) !== this.keys.slot)
      throw new CrossSlotError('optimistic', [...this.keys.watched, name], 'Transaction');
    return key;
  }

  /** GET: the string value, or null. */
  async get(key: string): Promise<string | null> {
    const full = this.key(key);
    return this.run(() => this.connection.get(full));
  }

  /** MGET: each value, or null, in order. */
  async mget(...keys: string[]): Promise<(string | null)[]> {
    const full = keys.map((key) => this.key(key));
    return this.run(() => this.connection.mget(full));
  }

  /** HGET: one field of a hash, or null. */
  async hget(key: string, field: string): Promise<string | null> {
    const full = this.key(key);
    return this.run(() => this.connection.hget(full, field));
  }

  /** HGETALL: every field of a hash (`{}` when there is none). */
  async hgetall(key: string): Promise<Record<string, string>> {
    const full = this.key(key);
    return this.run(() => this.connection.hgetall(full));
  }

  /** EXISTS: how many of the keys exist. */
  async exists(...keys: string[]): Promise<number> {
    const full = keys.map((key) => this.key(key));
    return this.run(() => this.connection.exists(full));
  }

  /** ZSCORE: a member's score, or null. */
  async zscore(key: string, member: string): Promise<number | null> {
    const full = this.key(key);
    const score = await this.run(() => this.connection.zscore(full, member));
    return score === null ? null : Number(score);
  }

  /** LLEN: the length of a list (0 when missing). */
  async llen(key: string): Promise<number> {
    const full = this.key(key);
    return this.run(() => this.connection.llen(full));
  }

  /** SCARD: the size of a set (0 when missing). */
  async scard(key: string): Promise<number> {
    const full = this.key(key);
    return this.run(() => this.connection.scard(full));
  }

  /** The remaining time to live in milliseconds (PTTL): -1 for a key without expiry, -2 for a missing key. */
  async ttl(key: string): Promise<number> {
    const full = this.key(key);
    return this.run(() => this.connection.pttl(full));
  }

  /**
   * Any read command, at once, with its arguments as given (keys from `tx.key`).
   * @example
   * const rank = await tx.read('ZRANK', tx.key('board'), 'ada');
   */
  read(command: string, ...args: TransactionArgument[]): Promise<unknown> {
    return this.run(() => this.connection.call(command, ...args));
  }

  /** Queues SET, with an expiry when `ttl` is given. */
  set(key: string, value: string | number, options: { ttl?: Duration } = {}): void {
    const expiry = options.ttl === undefined ? [] : ['PX', toTimerMilliseconds(options.ttl, 'ttl')];
    this.queue(['SET', this.key(key), value, ...expiry]);
  }

  /** Queues DEL of the keys. */
  del(...keys: string[]): void {
    this.queue(['DEL', ...keys.map((key) => this.key(key))]);
  }

  /** Queues INCRBY (a negative `by` decrements). */
  incrby(key: string, by: number): void {
    this.queue(['INCRBY', this.key(key), by]);
  }

  /** Queues HSET of the fields. */
  hset(key: string, fields: Record<string, string | number>): void {
    this.queue(['HSET', this.key(key), ...Object.entries(fields).flat()]);
  }

  /** Queues HINCRBY of one field. */
  hincrby(key: string, field: string, by: number): void {
    this.queue(['HINCRBY', this.key(key), field, by]);
  }

  /** Queues HDEL of the fields. */
  hdel(key: string, ...fields: string[]): void {
    this.queue(['HDEL', this.key(key), ...fields]);
  }

  /** Queues PEXPIRE: the key expires `ttl` after the commit. */
  expire(key: string, ttl: Duration): void {
    this.queue(['PEXPIRE', this.key(key), toTimerMilliseconds(ttl, 'ttl')]);
  }

  /** Queues ZADD of one member. */
  zadd(key: string, score: number, member: string): void {
    this.queue(['ZADD', this.key(key), score, member]);
  }

  /** Queues RPUSH of the values. */
  rpush(key: string, ...values: (string | number)[]): void {
    this.queue(['RPUSH', this.key(key), ...values]);
  }

  /** Queues SADD of the members. */
  sadd(key: string, ...members: (string | number)[]): void {
    this.queue(['SADD', this.key(key), ...members]);
  }

  /**
   * Queues any write command, with its arguments as given (keys from `tx.key`).
   * @example
   * tx.write('LTRIM', tx.key('log:7'), 0, 99);
   */
  write(command: string, ...args: TransactionArgument[]): void {
    this.queue([command, ...args]);
  }

  /**
   * Ends the transaction without writing anything: `optimistic` resolves with
   * `{ committed: false, reason }`. It throws to leave the body; do not catch it there.
   * @example
   * if (balance < amount) tx.abort('insufficient funds');
   */
  abort(reason = 'aborted'): never {
    this.abortReason = reason;
    throw new TransactionAbortSignal(reason);
  }

  /** Ends the body: no more reads or writes. Returns the queued writes. */
  close(): TransactionArgument[][] {
    this.open = false;
    return this.queued;
  }

  private queue(command: TransactionArgument[]): void {
    this.assertOpen();
    this.queued.push(command);
  }

  private async run<T>(read: () => Promise<T>): Promise<T> {
    this.assertOpen();
    try {
      const [, value] = await Promise.all([this.watching, read()]);
      return value;
    } catch (error) {
      // Redis's reply or the connection's failure: the attempt's connection is not reused.
      this.failure ??= error;
      throw this.toError(error);
    }
  }

  private assertOpen(): void {
    if (!this.open)
      throw new RedisPatternsError('This optimistic transaction has ended: use tx only inside its body, and await its reads.');
  }
}
