import type { Request } from 'express';
import session from 'express-session';
import { LRUCache } from 'lru-cache';
import type { SessionData } from 'express-session';
import { InvalidOptionError } from '../core/errors.js';
import { assertWellFormed } from '../core/validation.js';
import { hashOf, isSessionId, isStoreSessionId, toStoreSessionId } from './session-ids.js';
import { STORE_COMMANDS, type SessionStoreCommands } from './session-store.commands.js';
import type { SessionService } from './session.service.js';

/** A store callback: express-session's and @fastify/session's `(error, result)`. */
export type StoreCallback<T> = (error: unknown, result?: T) => void;

/** Options of {@link RedisSessionStore}. */
export interface RedisSessionStoreOptions {
  /**
   * Which user a session belongs to, for `SessionService.listForUser` and `destroyAllForUser`: a
   * string, or a finite number (passport's usual user id), which is indexed as its string
   * (`42` as `'42'`); null, undefined or `''` for none. Anything else makes `set` fail with an
   * InvalidOptionError naming `userIdOf`, and a string that is not well-formed Unicode with a
   * MalformedTextError naming it.
   * @default the session's `userId` when it is a non-empty string or a finite number
   * @example
   * new RedisSessionStore(sessions, { userIdOf: (session) => session.passport?.user })
   */
  userIdOf?: (session: SessionData) => string | number | null | undefined;
}

/**
 * How many handles of loaded sessions the store remembers, so that a middleware that copies the
 * loaded data into a new object (@fastify/session) cannot bring a destroyed session back.
 */
const REMEMBERED_HANDLES = 10_000;

/**
 * A store for express-session and @fastify/session (whose store interface is the same), on
 * `SessionService`: ids hashed before they become keys, the idle and absolute timeouts on Redis's
 * clock capped by the cookie's expiry, and the per-user index, so an app can list and end a
 * user's sessions. Import it from `nestjs-redis-patterns/express-session`.
 *
 * Every method takes an optional callback, called once; without one it returns a Promise. What
 * a callback throws is thrown again outside the promise chain: an uncaught exception, which
 * crashes Node unless the app handles `'uncaughtException'` (as with express-session's
 * MemoryStore), never an unhandled rejection. When Redis cannot answer, the error is a
 * `RedisUnavailableError` (`statusCode` 503).
 *
 * `ids()` and `all()` give handles (the SHA-256 of each id, base64url), not ids: Redis holds no
 * id, so a dump of Redis contains no live session token.
 *
 * @example
 * import { RedisSessionStore } from 'nestjs-redis-patterns/express-session';
 * app.use(session({ store: new RedisSessionStore(app.get(SessionService)), secret, resave: false, saveUninitialized: false }));
 */
export class RedisSessionStore extends session.Store {
  private readonly commands: SessionStoreCommands;
  private readonly userIdOf: (session: SessionData) => unknown;
  /** What errors about the user id name: the option, or the field the default reads. */
  private readonly userIdArgument: 'userIdOf' | 'userId';
  /** Sessions express-session made from data this store loaded (`createSession`), or this store saved. */
  private readonly storedSessions = new WeakSet<object>();
  /** Handles of sessions this store loaded lately, the least recent dropped first. */
  private readonly recentHandles = new LRUCache<string, true>({ max: REMEMBERED_HANDLES });

  constructor(sessions: SessionService, options: RedisSessionStoreOptions = {}) {
    super();
    this.commands = sessions[STORE_COMMANDS];
    this.userIdOf = options.userIdOf ?? defaultUserIdOf;
    this.userIdArgument = options.userIdOf ? 'userIdOf' : 'userId';
  }

  /**
   * The session's handle, as `ids()`, `all()`, `SessionService.listForUser` and session events name it.
   * @example
   * const mine = RedisSessionStore.handleOf(req.sessionID);
   */
  static handleOf(sid: string): string {
    return hashOf(toStoreSessionId('sid', sid));
  }

  /**
   * The session exactly as it was saved, or null (unknown, expired, its cookie expired, or an id
   * the store would never accept, answered without asking Redis).
   * @example
   * const data = await store.get(req.sessionID);
   */
  get(sid: string): Promise<SessionData | null>;
  get(sid: string, callback: StoreCallback<SessionData | null>): void;
  get(sid: string, callback?: StoreCallback<SessionData | null>): Promise<SessionData | null> | void {
    return answer(this.readSession(sid), callback);
  }

  private async readSession(sid: string): Promise<SessionData | null> {
    if (!isStoreSessionId(sid)) return null;
    const handle = hashOf(sid);
    const loaded = (await this.commands.load(handle)) as SessionData | null;
    if (loaded) this.recentHandles.set(handle, true);
    return loaded;
  }

  /**
   * express-session's hook that makes `req.session` from loaded data: remembered, so that its
   * saves never start the session again once it is destroyed or expired.
   */
  override createSession(req: Request, data: SessionData): session.Session & SessionData {
    const created = super.createSession(req, data);
    this.storedSessions.add(created);
    return created;
  }

  /**
   * Saves the whole session: replaces a live one, or starts it, unless this store had loaded it
   * (then, destroyed or expired meanwhile, it stays so). The cookie's expiry caps it; a cookie
   * that has expired ends it. Refuses an id it does not accept with an InvalidOptionError naming `sid`.
   * @example
   * await store.set(req.sessionID, req.session);
   */
  set(sid: string, data: SessionData): Promise<void>;
  set(sid: string, data: SessionData, callback?: StoreCallback<void>): void;
  set(sid: string, data: SessionData, callback?: StoreCallback<void>): Promise<void> | void {
    return answer(this.writeSession(sid, data), callback);
  }

  private async writeSession(sid: string, data: SessionData): Promise<void> {
    const handle = hashOf(toStoreSessionId('sid', sid));
    if (typeof data !== 'object' || data === null) throw new InvalidOptionError('session', 'a session object', data);
    const userId = toUserId(this.userIdArgument, this.userIdOf(data));
    const mayCreate = !this.storedSessions.has(data) && !this.recentHandles.has(handle);
    // As these middlewares' own stores do: the session as JSON (their Session objects carry
    // symbols and methods; the cookie's dates come back as strings, which both accept).
    const sessionJson = JSON.stringify(data);
    await this.commands.save(handle, { sessionJson, userId, cookieExpiresInMs: cookieExpiresInMs(data), mayCreate });
    // A later save of this very object (express-session saves the same one) starts nothing again.
    this.storedSessions.add(data);
  }

  /**
   * Ends the session. Resolves with whether there was one.
   * @example
   * await store.destroy(req.sessionID);
   */
  destroy(sid: string): Promise<boolean>;
  destroy(sid: string, callback?: StoreCallback<boolean>): void;
  destroy(sid: string, callback?: StoreCallback<boolean>): Promise<boolean> | void {
    return answer(isStoreSessionId(sid) ? this.commands.destroy(hashOf(sid)) : Promise.resolve(false), callback);
  }

  /**
   * What express-session calls for a session it does not save: slides the idle timeout and moves
   * the cap to the cookie's new expiry (still within the absolute timeout). Like a read, a touch
   * that moves no cap slides at most once per `touchInterval`: one that comes sooner after this
   * instance read the session (as express-session's does, at the end of the request that loaded it)
   * sends nothing.
   * @example
   * await store.touch(req.sessionID, req.session);
   */
  override touch(sid: string, data: SessionData): Promise<void>;
  override touch(sid: string, data: SessionData, callback?: StoreCallback<void>): void;
  override touch(sid: string, data: SessionData, callback?: StoreCallback<void>): Promise<void> | void {
    // Without the session, the cap its cookie put on it stays.
    const cookie = data === undefined || data === null ? undefined : { expiresInMs: cookieExpiresInMs(data) };
    return answer(isStoreSessionId(sid) ? this.commands.touch(hashOf(sid), cookie) : Promise.resolve(), callback);
  }

  /**
   * The handles of the store's live sessions (SCAN on every master, never KEYS): the SHA-256 of
   * each id, since Redis holds no id. `SessionService.listForUser` and session events name
   * sessions by the same handles; {@link destroyHandle} ends one.
   * @example
   * const handles = await store.ids();
   */
  ids(): Promise<string[]>;
  ids(callback: StoreCallback<string[]>): void;
  ids(callback?: StoreCallback<string[]>): Promise<string[]> | void {
    return answer(this.commands.handles(), callback);
  }

  /**
   * The store's live sessions, each exactly as saved, by handle (as express-session's MemoryStore
   * gives them by id). Reads every session: for one user's, `SessionService.listForUser` is cheaper.
   * @example
   * const count = Object.keys(await store.all()).length;
   */
  override all(): Promise<Record<string, SessionData>>;
  override all(callback: StoreCallback<Record<string, SessionData>>): void;
  override all(callback?: StoreCallback<Record<string, SessionData>>): Promise<Record<string, SessionData>> | void {
    return answer(this.commands.sessions() as Promise<Record<string, SessionData>>, callback);
  }

  /**
   * How many live sessions the store has.
   * @example
   * const live = await store.length();
   */
  override length(): Promise<number>;
  override length(callback: StoreCallback<number>): void;
  override length(callback?: StoreCallback<number>): Promise<number> | void {
    return answer(this.commands.count(), callback);
  }

  /**
   * Ends every session of this store (not those `SessionService.create` made) and takes them out
   * of their users' indexes. Resolves with how many it ended.
   * @example
   * await store.clear();
   */
  override clear(): Promise<number>;
  override clear(callback?: StoreCallback<number>): void;
  override clear(callback?: StoreCallback<number>): Promise<number> | void {
    return answer(this.commands.clear(), callback);
  }

  /**
   * Ends the session with this handle (as `ids()` and `all()` give them). A string that is not a
   * handle ends nothing, without asking Redis.
   * @example
   * for (const handle of Object.keys(await store.all())) await store.destroyHandle(handle);
   */
  destroyHandle(handle: string): Promise<boolean>;
  destroyHandle(handle: string, callback?: StoreCallback<boolean>): void;
  destroyHandle(handle: string, callback?: StoreCallback<boolean>): Promise<boolean> | void {
    return answer(isSessionId(handle) ? this.commands.destroy(handle) : Promise.resolve(false), callback);
  }
}

/** The session's `userId` when it is one (see {@link toUserId}); anything else there is app data, not a user. */
function defaultUserIdOf(data: SessionData): string | number | null {
  const userId = (data as unknown as { userId?: unknown }).userId;
  return typeof userId === 'string' || (typeof userId === 'number' && Number.isFinite(userId)) ? userId : null;
}

/**
 * The user id `userIdOf` gave, as the text the index holds: a string as it is, a finite number as
 * its string; null for none (null, undefined or ''). Anything else is refused naming `argument`.
 */
function toUserId(argument: string, userId: unknown): string | null {
  if (userId === null || userId === undefined || userId === '') return null;
  if (typeof userId === 'number' && Number.isFinite(userId)) return String(userId);
  if (typeof userId !== 'string')
    throw new InvalidOptionError(argument, 'a string, a finite number, null or undefined (a user id, or none)', userId);
  return assertWellFormed(argument, userId);
}

/**
 * The cookie's expiry in ms from now, on this host's clock (where the middleware set it), or
 * undefined when it has none (a browser-session cookie) or an unreadable one. Redis applies it
 * on its own clock, so the two clocks need not agree.
 */
function cookieExpiresInMs(data: SessionData): number | undefined {
  const expires: unknown = (data as { cookie?: { expires?: unknown } }).cookie?.expires;
  if (expires === null || expires === undefined || expires === false) return undefined;
  const at =
    expires instanceof Date
      ? expires.getTime()
      : typeof expires === 'string' || typeof expires === 'number'
        ? new Date(expires).getTime()
        : Number.NaN;
  return Number.isFinite(at) ? at - Date.now() : undefined;
}

/** Hands the result to the callback, once (see {@link call}); without a callback, returns the promise. */
function answer<T>(pending: Promise<T>, callback: StoreCallback<T> | undefined): Promise<T> | void {
  if (typeof callback !== 'function') return pending;
  pending.then(
    (result) => call(callback, null, result),
    (error: unknown) => call(callback, error),
  );
}

/**
 * Calls a store callback, and throws what it throws again outside the promise chain (on the next
 * tick): an uncaught exception, as with express-session's MemoryStore, never an unhandled
 * rejection, and never a second call.
 */
function call<T>(callback: StoreCallback<T>, error: unknown, result?: T): void {
  try {
    callback(error, result);
  } catch (thrown) {
    process.nextTick(() => {
      throw thrown;
    });
  }
}
