import type { Duration } from '../core/duration.js';

/**
 * A request as the idempotency options see it, on Express and Fastify alike (its `user`, set by
 * an authentication guard or middleware, scopes keys).
 */
export interface IdempotencyRequest {
  method?: string;
  /** Express's URL as the client sent it (Fastify's `url` already is). */
  originalUrl?: string;
  url?: string;
  headers: Record<string, string | string[] | undefined>;
  body?: unknown;
  user?: Record<string, unknown> | null;
}

/**
 * Options of idempotency keys, under `idempotency` in the module options. Every one has a
 * default; `@Idempotent()` overrides some of them per route.
 *
 * @example
 * RedisPatternsModule.forRoot({
 *   connection,
 *   idempotency: { ttl: '24h', required: true, user: (request) => request.user?.accountId },
 * });
 */
export interface IdempotencyOptions {
  /** How long a stored response is replayed, counted from when it was stored. @default '24h' */
  ttl?: Duration;
  /**
   * The lease of a request still running: renewed every third of it while the handler runs. Once
   * it runs out without a renewal (the instance died), the key is free again and a retry runs.
   * @default '30s'
   */
  lease?: Duration;
  /** The request header that carries the key. @default 'Idempotency-Key' */
  header?: string;
  /** A request without the header: answer 400 naming the header (`true`), or run as usual. @default false */
  required?: boolean;
  /** The longest key, in characters. @default 255 */
  maxKeyLength?: number;
  /**
   * The response headers stored and replayed with the status and the body (case-insensitive).
   * Framing headers (`Content-Length`, `Transfer-Encoding`, `Content-Encoding`, `Connection`...)
   * are never stored: the replay frames its body itself.
   * @default ['content-type', 'content-language', 'content-disposition', 'content-location', 'location', 'etag', 'last-modified', 'cache-control', 'link']
   */
  replayHeaders?: readonly string[];
  /** The header a replayed response carries, with the value `true`; `false` for none. @default 'Idempotent-Replayed' */
  replayedHeader?: string | false;
  /** Store 4xx responses and replay them (`true`), or free the key on them so that a retry runs again. @default true */
  storeClientErrors?: boolean;
  /** The `Retry-After` of a 409 answered while the first request with the key still runs (whole seconds, rounded up). @default '1s' */
  retryAfter?: Duration;
  /** The largest response body stored, in bytes. A larger one is sent but not stored: its key is freed. @default 1048576 */
  maxResponseBytes?: number;
  /**
   * Who the request is from: keys are scoped per user, so two users' equal keys never meet. A
   * string or a number; `undefined` or `null` for an anonymous request.
   * @default the `id`, `sub` or `userId` of `request.user`
   */
  user?(request: IdempotencyRequest): unknown;
  /**
   * When Redis cannot be reached: `'closed'` answers 503 (`RedisUnavailableError`) and runs
   * nothing; `'open'` runs the handler without idempotency (logged once per outage).
   * @default 'closed'
   */
  onStoreError?: 'open' | 'closed';
}

/**
 * Options of one route's `@Idempotent()`, over the module's `idempotency` options.
 *
 * @example
 * @Post()
 * @Idempotent({ required: true, ttl: '1h' })
 * create(@Body() order: NewOrder) { ... }
 */
export type IdempotentOptions = Pick<IdempotencyOptions, 'ttl' | 'lease' | 'required' | 'storeClientErrors' | 'onStoreError'>;

/**
 * Options of one `IdempotencyService.run` or `begin`, over the module's `idempotency` options.
 *
 * @example
 * await this.idempotency.run(message.id, JSON.stringify(message.body), () => this.charge(message.body), { scope: message.tenant });
 */
export interface IdempotentRunOptions extends Pick<IdempotencyOptions, 'ttl' | 'lease' | 'onStoreError'> {
  /** Whose key it is (a user, a tenant): equal keys of different scopes never meet. */
  scope?: string;
}

/** Metadata of `@Idempotent()`: the route's `IdempotentOptions`. */
export const IDEMPOTENT_ROUTE = 'redis-patterns:idempotent';

/** Injection token of the resolved `idempotency` section (`ResolvedIdempotencyOptions`). */
export const IDEMPOTENCY_OPTIONS = Symbol('RedisPatterns:IdempotencyOptions');
