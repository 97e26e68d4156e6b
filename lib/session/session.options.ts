import type { Duration } from '../core/duration.js';

/**
 * Options of sessions, under `session` in the module options.
 *
 * @example
 * RedisPatternsModule.forRoot({ connection, session: { idleTtl: '30m', absoluteTtl: '8h' } });
 */
export interface SessionOptions extends SessionLimits {
  /** A session not used for this long expires. @default '30m' */
  idleTtl?: Duration;
  /** A session expires this long after it was created, however much it is used. @default '12h' */
  absoluteTtl?: Duration;
  /** Reads slide the idle timeout at most this often (a read in between writes nothing). @default '1m' */
  touchInterval?: Duration;
  /** The session cookie that `SessionGuard` reads and `SessionCookies` writes. */
  cookie?: SessionCookieOptions;
  /** Also accept `Authorization: Bearer <id>` (for API clients). @default true */
  bearer?: boolean;
}

/** The signed session cookie. HttpOnly always. */
export interface SessionCookieOptions {
  /** Signs the cookie (HMAC-SHA256). At least 32 characters; with an array, the first signs and all verify (rotation). */
  secret: string | readonly string[];
  /** @default 'sid' */
  name?: string;
  /** @default true */
  secure?: boolean;
  /** @default 'lax' */
  sameSite?: 'strict' | 'lax' | 'none';
  /** @default '/' */
  path?: string;
  domain?: string;
}

/** Per-session overrides of the timeouts. */
export interface SessionTimeouts {
  idleTtl?: Duration;
  absoluteTtl?: Duration;
}

/** What happens to a session that would give its user more than `maxSessionsPerUser`. */
export type OnSessionLimit = 'reject' | 'evict-oldest';

/**
 * Seat limits: how many live sessions one user may hold. In the module's `session` options for
 * every session with a user, and per call of `create` and `regenerate` (which override them).
 */
export interface SessionLimits {
  /**
   * The most live sessions a user may have at once: those of `SessionService` and of
   * `RedisSessionStore` together, expired ones not counted. A session that would be one more is
   * refused or makes room, as `onLimit` says, decided in one script with the user's index, so
   * logins racing on any number of instances never leave more. No limit by default.
   * @example
   * session: { maxSessionsPerUser: 3 } // a fourth login ends the oldest session of the three
   */
  maxSessionsPerUser?: number;
  /**
   * `'evict-oldest'` (the default): the new session starts and the user's oldest (the earliest
   * created) end, announced as `destroyed` with `reason: 'evicted'`. `'reject'`: the new session
   * does not start, and the call rejects with `SessionLimitError` (409).
   * @example
   * session: { maxSessionsPerUser: 1, onLimit: 'reject' }
   */
  onLimit?: OnSessionLimit;
}

/** The options of `SessionService.create`: the session's timeouts and seat limits, over the module's. */
export interface SessionCreateOptions extends SessionTimeouts, SessionLimits {}

/** The options of `SessionService.regenerate`: a user to log the session in, and seat limits over the module's. */
export interface SessionRegenerateOptions extends SessionLimits {
  /** The user the session belongs to from now on (an anonymous session logging in); its own user by default. */
  userId?: string;
}

/** A live session. `id` is the secret the client holds; Redis only ever sees a hash of it. */
export interface Session<D extends Record<string, unknown> = Record<string, unknown>> {
  id: string;
  /** A hash of the id, as Redis keys the session and `listForUser` lists it. */
  handle: string;
  userId: string | null;
  data: D;
  createdAt: number;
  lastSeenAt: number;
  /**
   * When it expires unless used again: min(lastSeenAt + idleTtl, createdAt + absoluteTtl), and for
   * a session of `RedisSessionStore` no later than its cookie's expiry.
   */
  expiresAt: number;
}

/**
 * A session as listed for its user: without its id (which is never stored), but with its
 * `handle` (a hash of the id) to tell sessions apart and to end one.
 */
export type SessionInfo<D extends Record<string, unknown> = Record<string, unknown>> = Omit<Session<D>, 'id'>;

/** What `SessionService` publishes on the `sessions` channel. */
export interface SessionEvent {
  type: 'created' | 'regenerated' | 'destroyed';
  userId: string | null;
  handle: string;
  /** For `regenerated`: the handle that stopped working. */
  previousHandle?: string;
  /** For `destroyed`: `'evicted'` when it made room for a newer session of its user (`maxSessionsPerUser`). */
  reason?: 'evicted';
}

/** Injection token of the resolved `session` section (`ResolvedSessionOptions`). */
export const SESSION_OPTIONS = Symbol('RedisPatterns:SessionOptions');
