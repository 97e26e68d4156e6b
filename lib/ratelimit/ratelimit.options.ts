import type { ExecutionContext } from '@nestjs/common';
import type { Duration } from '../core/duration.js';

/** How a policy counts: weighted two-window counters (the default), plain windows, or GCRA. */
export type RateLimitAlgorithm = 'sliding-window' | 'fixed-window' | 'token-bucket';

/** Who a request counts against, in HTTP handlers: its IP, its user, or a function of the context. */
export type RateLimitTracker = 'ip' | 'user' | ((context: ExecutionContext) => string | Promise<string>);

/**
 * One limit: at most `limit` units per `window` for each caller.
 *
 * @example
 * { name: 'per-second', limit: 10, window: '1s' }
 * { name: 'login', limit: 5, window: '15m', by: (ctx) => ctx.switchToHttp().getRequest().body.username, blockFor: '15m', onStoreError: 'closed' }
 * { name: 'bursty', limit: 100, window: '1m', algorithm: 'token-bucket', burst: 20 }
 */
export interface RateLimitPolicy {
  /** Policies stack by name: a handler's policy replaces the controller's or module's of the same name. @default 'default' */
  name?: string;
  /** Units allowed per window (an integer of at least 1). */
  limit: number;
  /** The window: `limit` units per this long. */
  window: Duration;
  /** @default 'sliding-window' */
  algorithm?: RateLimitAlgorithm;
  /** Token bucket only: how many units may be spent at once. @default limit */
  burst?: number;
  /** HTTP handlers: who the request counts against. `ip` follows the app's trust-proxy setting. @default 'ip' */
  by?: RateLimitTracker;
  /** Units one request spends: an integer of at least 1, or a function of the context. @default 1 */
  cost?: number | ((context: ExecutionContext) => number | Promise<number>);
  /** Once the limit is exceeded, reject the caller for this long. */
  blockFor?: Duration;
  /**
   * With `blockFor`, what counts when the block ends: `'continue'` counts on from where the
   * policy was (a caller whose window is still full is rejected again, and blocked again), and
   * `'reset'` starts the count afresh, as @nestjs/throttler's `blockDuration` does (then a
   * rejected caller's `Retry-After` is the block's end).
   * @default 'continue'
   * @example
   * { name: 'login', limit: 5, window: '1h', blockFor: '15m', afterBlock: 'reset' }
   */
  afterBlock?: 'continue' | 'reset';
  /** When Redis fails: admit (`'open'`, logged once per outage) or reject with 503 (`'closed'`). @default module's `onStoreError` */
  onStoreError?: 'open' | 'closed';
}

/**
 * A policy on a method of any provider: limited by a key computed from the method's arguments
 * instead of by HTTP request.
 *
 * @example
 * @RateLimit<[string]>({ key: (tenant) => tenant, limit: 5, window: '1s', onLimit: 'wait' })
 * async callPartner(tenant: string) { ... }
 */
export interface MethodRateLimitPolicy<A extends unknown[] = unknown[]> extends Omit<RateLimitPolicy, 'by' | 'cost'> {
  key: (...args: A) => string;
  cost?: number | ((...args: A) => number);
  /** Over the limit: throw `RateLimitExceededException`, or wait until the call is allowed. @default 'throw' */
  onLimit?: 'throw' | 'wait';
  /** With `onLimit: 'wait'`: the longest a call waits before it throws. @default '30s' */
  maxWait?: Duration;
}

/** Which rate-limit headers HTTP responses carry. */
export type RateLimitHeaders = 'both' | 'ietf' | 'legacy' | false;

/**
 * Options of rate limiting, under `rateLimit` in the module options.
 *
 * @example
 * RedisPatternsModule.forRoot({
 *   connection,
 *   rateLimit: { policies: [{ name: 'api', limit: 1000, window: '1h' }], headers: 'ietf' },
 * });
 */
export interface RateLimitOptions {
  /** Policies every route guarded by `RateLimitGuard` gets, counted across all routes. @default [] */
  policies?: RateLimitPolicy[];
  /**
   * `'ietf'`: `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers); `'legacy'`:
   * `X-RateLimit-Limit`, `-Remaining` and `-Reset`; `'both'`; or `false`. `Retry-After` is always
   * sent with a 429.
   * @default 'both'
   */
  headers?: RateLimitHeaders;
  /** What a policy without its own `onStoreError` does when Redis fails. @default 'open' */
  onStoreError?: 'open' | 'closed';
}

/** What one policy decided for one call. */
export interface RateLimitDecision {
  policy: string;
  allowed: boolean;
  limit: number;
  /** Units left after this call. */
  remaining: number;
  /** Milliseconds until the full quota is available again. */
  resetMs: number;
  /** Milliseconds to wait before the call could be allowed: 0 when allowed, `undefined` when its cost exceeds the limit. */
  retryAfterMs: number | undefined;
  /** The window, in milliseconds (for the `RateLimit-Policy` header). */
  windowMs: number;
  /** Set when Redis failed and an `onStoreError: 'open'` policy admitted the call unchecked. */
  unavailable?: true;
}

/** Injection token of the resolved `rateLimit` section (`ResolvedRateLimitOptions`). */
export const RATE_LIMIT_OPTIONS = Symbol('RedisPatterns:RateLimitOptions');
