import type { Duration } from '../core/duration.js';

/**
 * Options of sessions, under `session` in the module options.
 *
 * @example
 * RedisPatternsModule.forRoot({ connection, session: { idleTtl: '30m', absoluteTtl: '8h' } });
 */
export interface SessionOptions {
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

/** A live session. `id` is the secret the client holds; Redis only ever sees a hash of it. */
export interface Session<D extends Record<string, unknown> = Record<string, unknown>> {
  id: string;
  /** A hash of the id, as Redis keys the session and `listForUser` lists it. */
  handle: string;
  userId: string | null;
  data: D;
  createdAt: number;
  lastSeenAt: number;
  /** When it expires unless used again: min(lastSeenAt + idleTtl, createdAt + absoluteTtl). */
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
}
