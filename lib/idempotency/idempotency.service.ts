import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { RedisCodec } from '../core/codec.js';
import { REDIS_CODEC } from '../core/core.constants.js';
import { InvalidOptionError } from '../core/errors.js';
import { RedisKeys } from '../core/keys.js';
import { RedisMetrics } from '../core/metrics.js';
import { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { RandomTokens } from '../core/random-tokens.js';
import { RedisScript } from '../core/redis-script.js';
import { outageOf, RedisUnavailableError, type OutageKind } from '../core/store-failure.js';
import { giveBack, IdempotencyClaim, type ClaimContext, type IdempotencyRecord, type StoredHeader } from './idempotency.claim.js';
import { IdempotencyConflictError, IdempotencyKeyReusedError } from './idempotency.errors.js';
import { checkServiceKey } from './idempotency.key.js';
import { IdempotencyMetrics } from './idempotency.metrics.js';
import { IDEMPOTENCY_OPTIONS, type IdempotentRunOptions } from './idempotency.options.js';
import { resolveRunOptions, type ResolvedIdempotencyOptions, type ResolvedIdempotentSettings } from './idempotency.options-validator.js';

/** The tokens that tell one run of a key from another: 128 random bits each. */
const runTokens = new RandomTokens(16, 'base64url');
const beginScript = RedisScript.fromFile(new URL('./idempotency-begin.lua', import.meta.url));

/**
 * How a request with a key begins: it `run`s (its `claim` holds the key until the response is
 * stored or the key released), its stored response is replayed, or, Redis being unreachable
 * with `onStoreError: 'open'`, it runs `unchecked`.
 */
export type IdempotencyBegin =
  | { outcome: 'run'; claim: IdempotencyClaim }
  | { outcome: 'replay'; record: IdempotencyRecord }
  | { outcome: 'unchecked'; outage: OutageKind };

/** What `IdempotencyService.run` answers: the value, and whether it was replayed from an earlier run. */
export interface IdempotentResult<T> {
  value: T;
  replayed: boolean;
}

/**
 * Idempotency keys in Redis: a key's first request runs and its result is stored for `ttl`; a
 * repeat gets the stored result; a repeat while the first still runs gets
 * `IdempotencyConflictError` (409); the same key for a different request (another fingerprint)
 * gets `IdempotencyKeyReusedError` (422). The first request holds the key with a random token and
 * a lease renewed while it runs, so a crashed instance's key is taken over once its lease runs
 * out, never while its owner lives. `@Idempotent()` does this for HTTP routes; `run` for anything
 * else (message handlers, jobs, RPC).
 *
 * @example
 * const { value, replayed } = await this.idempotency.run(
 *   message.id,
 *   JSON.stringify(message.payload),
 *   () => this.payments.charge(message.payload),
 *   { scope: message.tenantId },
 * );
 */
@Injectable()
export class IdempotencyService implements OnApplicationShutdown {
  private readonly logger = new Logger('RedisPatterns:Idempotency');
  private readonly outage = new OutageLog(this.logger, 'idempotency keys', "requests are answered 503 ('open': run unchecked)");
  private readonly redis: RedisClient;
  private readonly metrics: IdempotencyMetrics;
  private readonly claimContext: ClaimContext;
  private closing = false;

  constructor(
    connections: RedisConnections,
    private readonly keys: RedisKeys,
    @Inject(IDEMPOTENCY_OPTIONS) private readonly settings: ResolvedIdempotencyOptions,
    @Inject(REDIS_CODEC) private readonly codec: RedisCodec,
    metrics: RedisMetrics,
  ) {
    this.redis = connections.get();
    this.metrics = new IdempotencyMetrics(metrics);
    this.claimContext = {
      redis: this.redis,
      outage: this.outage,
      logger: this.logger,
      ended: (_claim, end) => this.metrics.claimEnded(end),
      isClosing: () => this.closing,
    };
  }

  /**
   * Runs `fn` once for `key`: a repeat within the TTL gets the stored value (decoded by the
   * module's codec) with `replayed: true`. `fingerprint` is what makes two requests the same (the
   * payload, as a string or bytes): the key with another fingerprint is refused. When `fn` throws,
   * the key is freed and the error thrown: a retry runs again.
   *
   * @throws IdempotencyConflictError (409) while the key's first call still runs.
   * @throws IdempotencyKeyReusedError (422) when the key was used with another fingerprint.
   * @throws IdempotencyKeyInvalidError (400) for an empty, too long or ill-formed key.
   * @throws RedisUnavailableError (503) when Redis cannot be reached and `onStoreError` is `'closed'` (the default).
   * @example
   * const { value } = await this.idempotency.run(`refund:${command.id}`, JSON.stringify(command), () => this.refunds.create(command));
   */
  async run<T>(
    key: string,
    fingerprint: string | Buffer,
    fn: () => T | Promise<T>,
    options: IdempotentRunOptions = {},
  ): Promise<IdempotentResult<Awaited<T>>> {
    const begun = await this.begin(key, fingerprint, options);
    if (begun.outcome === 'replay') return { value: this.decode<Awaited<T>>(begun.record, key), replayed: true };
    if (begun.outcome === 'unchecked') return { value: await fn(), replayed: false };
    let value: Awaited<T>;
    let body: Buffer;
    try {
      value = await fn();
      const encoded = this.codec.encode(value, begun.claim.recordKey);
      body = typeof encoded === 'string' ? Buffer.from(encoded, 'utf8') : encoded;
    } catch (error) {
      await begun.claim.release();
      throw error;
    }
    await begun.claim.complete({ status: undefined, headers: [], body });
    return { value, replayed: false };
  }

  /**
   * The first step of {@link run}, for callers that send their own responses: a `'run'` holds the
   * key until its `claim` stores a response (`complete`) or frees the key (`release`); a
   * `'replay'` carries the stored response.
   *
   * @throws IdempotencyConflictError, IdempotencyKeyReusedError, IdempotencyKeyInvalidError, RedisUnavailableError (see {@link run}).
   * @example
   * const begun = await this.idempotency.begin(key, payload);
   * if (begun.outcome === 'replay') return reply(begun.record.body);
   */
  async begin(key: string, fingerprint: string | Buffer, options: IdempotentRunOptions = {}): Promise<IdempotencyBegin> {
    checkServiceKey(key, 'key', this.settings.maxKeyLength);
    if (typeof fingerprint !== 'string' && !Buffer.isBuffer(fingerprint))
      throw new InvalidOptionError('fingerprint', 'a string or a Buffer (what makes two requests the same)', fingerprint);
    const scope = options.scope === undefined ? undefined : checkServiceKey(options.scope, 'options.scope', Number.MAX_SAFE_INTEGER);
    const settings = resolveRunOptions(options, this.settings);
    return this.claimKey(key, digest(fingerprint), scope, settings);
  }

  /**
   * Begins a request whose key, fingerprint digest (hex SHA-256) and settings are already checked
   * (by `IdempotencyInterceptor`).
   * @internal
   */
  async claimKey(
    key: string,
    fingerprintDigest: string,
    scope: string | undefined,
    settings: ResolvedIdempotentSettings,
  ): Promise<IdempotencyBegin> {
    const recordKey = this.recordKey(key, scope);
    const token = runTokens.next();
    // Never queued: a connection that is not ready is an outage at once.
    if (this.redis.status !== 'ready') return this.unavailable('disconnected', undefined, settings);
    let reply: (Buffer | number)[];
    try {
      reply = await beginScript.run<(Buffer | number)[]>(this.redis, [recordKey], [token, fingerprintDigest, settings.leaseMs], {
        buffers: true,
      });
    } catch (error) {
      const outage = outageOf(error);
      if (outage === undefined) throw error;
      // No reply in time: it may still run and take the key, which the retry would find taken.
      if (outage === 'timeout')
        giveBack(this.redis, recordKey, token).catch((failure: unknown) =>
          this.outage.report(failure, `give back idempotency key "${key}"`),
        );
      return this.unavailable(outage, error, settings);
    }
    this.outage.succeeded();
    switch (String(reply[0])) {
      case 'run':
        this.metrics.begun('executed');
        return {
          outcome: 'run',
          claim: new IdempotencyClaim(key, recordKey, token, settings.leaseMs, settings.ttlMs, this.claimContext),
        };
      case 'busy':
        this.metrics.begun('in-progress');
        throw new IdempotencyConflictError(key, this.settings.retryAfterSeconds * 1000);
      case 'mismatch':
        this.metrics.begun('mismatch');
        throw new IdempotencyKeyReusedError(key);
      default:
        this.metrics.begun('replayed');
        return { outcome: 'replay', record: toRecord(reply) };
    }
  }

  onApplicationShutdown(): void {
    // Leases of requests still running are no longer renewed: they run out by themselves.
    this.closing = true;
  }

  /** `<prefix>{idem:<key>}`, or `<prefix>{idem:<scope>:<key>}` for a scoped key. */
  private recordKey(key: string, scope: string | undefined): string {
    return this.keys.tagged(scope === undefined ? ['idem', key] : ['idem', scope, key]);
  }

  /** Redis could not be asked: 503 (`'closed'`), or the request runs unchecked (`'open'`). The outage is logged once. */
  private unavailable(outage: OutageKind, cause: unknown, settings: ResolvedIdempotentSettings): IdempotencyBegin {
    this.outage.noteOutage(outage);
    if (settings.onStoreError === 'closed') {
      this.metrics.begun('unavailable');
      throw new RedisUnavailableError('idempotency keys', outage, { cause });
    }
    this.metrics.begun('unchecked');
    return { outcome: 'unchecked', outage };
  }

  private decode<T>(record: IdempotencyRecord, key: string): T {
    return this.codec.decode<T>(this.codec.binary ? record.body : record.body.toString('utf8'), key);
  }
}

/** The hex SHA-256 of a fingerprint. */
function digest(fingerprint: string | Buffer): string {
  return createHash('sha256').update(fingerprint).digest('hex');
}

/** A stored response, from the begin script's `done` reply: status, headers (JSON), body. */
function toRecord(reply: readonly (Buffer | number)[]): IdempotencyRecord {
  const [, status, headers, body] = reply as Buffer[];
  const statusText = status.toString();
  return {
    status: statusText === '' ? undefined : Number(statusText),
    headers: JSON.parse(headers.toString()) as StoredHeader[],
    body,
  };
}
