import session from 'express-session';
import type { SessionData } from 'express-session';
import type { SessionService } from './session.service.js';

/** Set on sessions this store hands out (and carried back by the middleware's `set`). */
const STORED = '__nrpStored';

/** Options of {@link RedisSessionStore}. */
export interface RedisSessionStoreOptions {
  /**
   * Which user a session belongs to, for `SessionService.listForUser` and `destroyAllForUser`.
   * @default the session's `userId` when it is a non-empty string
   */
  userIdOf?: (session: SessionData) => string | null | undefined;
}

/**
 * A store for express-session (and @fastify/session, whose store interface is the same), on `SessionService`: the same hashed keys, idle and absolute
 * timeouts on Redis's clock, and a per-user index, so an app using express-session can list and
 * end a user's sessions without SCAN. Import it from `nestjs-redis-patterns/express-session`.
 *
 * @example
 * import { RedisSessionStore } from 'nestjs-redis-patterns/express-session';
 * app.use(session({ store: new RedisSessionStore(app.get(SessionService)), secret, resave: false, saveUninitialized: false }));
 */
export class RedisSessionStore extends session.Store {
  private readonly userIdOf: (data: SessionData) => string | null | undefined;

  constructor(
    private readonly sessions: SessionService,
    options: RedisSessionStoreOptions = {},
  ) {
    super();
    this.userIdOf = options.userIdOf ?? ((data) => {
      const userId = (data as unknown as { userId?: unknown }).userId;
      return typeof userId === 'string' && userId.length > 0 ? userId : null;
    });
  }

  get(sid: string, callback: (error: unknown, session?: SessionData | null) => void): void {
    this.sessions.get<{ sess?: SessionData }>(sid).then(
      // Marked as read from here, so a later `set` cannot bring it back once it is destroyed or expired.
      (found) => callback(null, found?.data.sess ? ({ ...found.data.sess, [STORED]: true } as SessionData) : null),
      (error: unknown) => callback(error),
    );
  }

  set(sid: string, data: SessionData, callback?: (error?: unknown) => void): void {
    // As these middlewares' own stores do: the session as JSON (their Session objects carry
    // symbols and methods; the cookie's dates come back as strings, which both accept).
    const { [STORED]: stored, ...plain } = data as SessionData & { [STORED]?: true };
    this.sessions.save(sid, this.userIdOf(data) ?? null, { sess: JSON.parse(JSON.stringify(plain)) as SessionData }, {}, { create: stored !== true }).then(
      () => callback?.(),
      (error: unknown) => callback?.(error),
    );
  }

  destroy(sid: string, callback?: (error?: unknown) => void): void {
    this.sessions.destroy(sid).then(
      () => callback?.(),
      (error: unknown) => callback?.(error),
    );
  }

  /** A read slides the idle timeout (throttled by `session.touchInterval`). */
  override touch(sid: string, _data: SessionData, callback?: (error?: unknown) => void): void {
    this.sessions.get(sid).then(
      () => callback?.(),
      (error: unknown) => callback?.(error),
    );
  }
}
