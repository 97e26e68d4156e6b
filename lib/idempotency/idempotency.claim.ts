import type { Logger } from '@nestjs/common';
import type { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisScript } from '../core/redis-script.js';
import { describeError, isStoreFailure } from '../core/store-failure.js';

const extendScript = RedisScript.fromFile(new URL('./idempotency-extend.lua', import.meta.url));
const completeScript = RedisScript.fromFile(new URL('./idempotency-complete.lua', import.meta.url));
const releaseScript = RedisScript.fromFile(new URL('./idempotency-release.lua', import.meta.url));

/**
 * Frees `recordKey` if it holds `token`, for a begin whose reply never came (a command timeout)
 * but that may still run on the server: its key is not left taken until its lease ends. Sent on
 * the same connection after the begin, it runs after it, even if it outlives its own timeout. It
 * goes as EVAL with the script's source: an EVALSHA the server does not know would answer
 * NOSCRIPT, and one that has timed out is never sent again.
 */
export async function giveBack(redis: RedisClient, recordKey: string, token: string): Promise<void> {
  await redis.call('EVAL', releaseScript.source, 1, recordKey, token);
}

/** A header of a stored response: its name in lower case, and its value. */
export type StoredHeader = readonly [name: string, value: string | readonly string[]];

/**
 * A stored response: for HTTP its status and the replayed headers, outside HTTP only the body
 * (the value, as the module's codec encoded it).
 */
export interface IdempotencyRecord {
  status: number | undefined;
  headers: readonly StoredHeader[];
  body: Buffer;
}

/**
 * How a claim ended: its response `stored`; `released` (the request failed, a retry runs again);
 * `lost` (its lease had run out and the key was no longer its own); `failed` (Redis could not
 * store or release it: the key stays taken until its lease runs out).
 */
export type ClaimEnd = 'stored' | 'released' | 'lost' | 'failed';

/** What every claim of a service shares. */
export interface ClaimContext {
  redis: RedisClient;
  outage: OutageLog;
  logger: Logger;
  /** Called once, when the claim ends. */
  ended(claim: IdempotencyClaim, end: ClaimEnd): void;
  /** Whether the app is shutting down: leases are no longer renewed. */
  isClosing(): boolean;
}

/**
 * A key held by the request running now, under a lease renewed every third of it until the
 * response is stored or the key released. Only its holder (its random token) can renew, store or
 * release it: a request that ran past its lease (after an instance stalled) stores nothing over
 * the one that took the key over.
 *
 * @example
 * const begun = await this.idempotency.begin(key, fingerprint);
 * if (begun.outcome === 'run') {
 *   try { await begun.claim.complete({ status: undefined, headers: [], body: Buffer.from(await send()) }); }
 *   catch (error) { await begun.claim.release(); throw error; }
 * }
 */
export class IdempotencyClaim {
  private renewal: NodeJS.Timeout | undefined;
  private ended = false;
  private leaseLost = false;

  constructor(
    /** The key as given (not the Redis key). */
    readonly key: string,
    /** The Redis key of the record. */
    readonly recordKey: string,
    private readonly token: string,
    private readonly leaseMs: number,
    /** How long a stored response lives, unless `complete` is given another. */
    private readonly ttlMs: number,
    private readonly context: ClaimContext,
  ) {
    this.scheduleRenewal();
  }

  /** Whether the lease was found lost (a renewal found the key no longer this claim's). */
  get lost(): boolean {
    return this.leaseLost;
  }

  /** Stores the response for `ttl` ms, and ends the claim. Never throws: a failure is logged and told by the result. */
  async complete(record: IdempotencyRecord, ttlMs = this.ttlMs): Promise<ClaimEnd> {
    const headers = JSON.stringify(record.headers);
    return this.end('store the response of', () =>
      completeScript.run<number>(this.context.redis, [this.recordKey], [this.token, ttlMs, record.status ?? '', headers, record.body]),
    );
  }

  /** Frees the key (the request failed), so that a retry runs again, and ends the claim. Never throws. */
  async release(): Promise<ClaimEnd> {
    return this.end('release', () => releaseScript.run<number>(this.context.redis, [this.recordKey], [this.token]));
  }

  /**
   * Stops renewing without storing or releasing: the request will not end (its client is gone and
   * nothing will be sent). The key is free once the lease runs out.
   */
  abandon(): void {
    clearTimeout(this.renewal);
  }

  private async end(doing: 'store the response of' | 'release', call: () => Promise<number>): Promise<ClaimEnd> {
    if (this.ended) return 'lost';
    this.ended = true;
    clearTimeout(this.renewal);
    let end: ClaimEnd;
    try {
      end = (await call()) === 1 ? (doing === 'release' ? 'released' : 'stored') : 'lost';
      this.context.outage.succeeded();
    } catch (error) {
      // An outage is logged once; the key stays taken until its lease runs out.
      this.context.outage.report(error, `${doing} idempotency key "${this.key}" (it stays taken until its lease runs out)`);
      end = 'failed';
    }
    if (end === 'lost' && doing !== 'release')
      this.context.logger.warn(
        `The response of idempotency key "${this.key}" was not stored: its lease had run out and the key was no longer this request's`,
      );
    this.context.ended(this, end);
    return end;
  }

  private scheduleRenewal(): void {
    this.renewal = setTimeout(() => void this.renew(), Math.max(1, Math.floor(this.leaseMs / 3)));
    this.renewal.unref();
  }

  private async renew(): Promise<void> {
    if (this.context.isClosing()) return;
    let held: boolean;
    try {
      held = (await extendScript.run<number>(this.context.redis, [this.recordKey], [this.token, this.leaseMs])) === 1;
    } catch (error) {
      // Not known to be lost: the next renewal tells. An outage is logged once.
      if (!isStoreFailure(error))
        this.context.logger.warn(`Could not renew the lease of idempotency key "${this.key}": ${describeError(error)}`);
      else this.context.outage.failed(error);
      held = true;
    }
    if (this.ended) return;
    if (held) return this.scheduleRenewal();
    this.leaseLost = true;
    this.context.logger.warn(
      `Idempotency key "${this.key}" lost its lease while its request ran (it ran out, and another may have taken it)`,
    );
  }
}
