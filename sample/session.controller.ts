import { Body, Controller, ForbiddenException, Get, HttpCode, Post, Req, Res, UnauthorizedException, UseGuards } from '@nestjs/common';
import type { Request, Response } from 'express';
import {
  CurrentSession,
  RateLimit,
  RateLimitGuard,
  SessionCookies,
  SessionGuard,
  SessionService,
  type Session,
  type SessionInfo,
} from '../lib/index.js';
import { credentialsOf, DEMO_PASSWORD, LOGIN_RATE_LIMIT } from './login.controller.js';

/** What the sample keeps in a session. */
export interface SessionData extends Record<string, unknown> {
  /** When the browser first came (set on the anonymous session, and carried into the logged-in one). */
  visitedAt?: string;
  /** The username as typed at login (the session's `userId` is its trimmed, lower-case form). */
  username?: string;
  loggedInAt?: string;
  /** The User-Agent the session was started with, so the list of sessions can tell devices apart. */
  userAgent?: string;
}

/** A session as the sample shows it: times as ISO strings, and never its id (that lives only in the cookie). */
export interface SessionView {
  userId: string | null;
  data: SessionData;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
}

/** One of the user's sessions in `GET /session/list`. */
export interface ListedSession {
  /** A hash of the session's id: tells sessions apart without revealing the id. */
  handle: string;
  /** Whether it is the session of the request. */
  current: boolean;
  userAgent: string | null;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
}

/**
 * Server-side sessions in Redis behind a signed, HttpOnly, Secure, SameSite=Lax cookie
 * (`session` in the module options, see app.module.ts). Try it with a cookie jar:
 *
 * ```sh
 * curl -c jar -b jar -X POST http://127.0.0.1:3000/session/visit
 * curl -c jar -b jar -X POST -H 'content-type: application/json' -d '{"username":"ann","password":"demo"}' http://127.0.0.1:3000/session/login
 * curl -c jar -b jar http://127.0.0.1:3000/session/profile
 * curl -c jar -b jar http://127.0.0.1:3000/session/list
 * curl -c jar -b jar -X POST http://127.0.0.1:3000/session/logout-others
 * curl -c jar -b jar -X POST http://127.0.0.1:3000/session/logout
 * ```
 *
 * State-changing routes are POSTs: with SameSite=Lax, browsers do not send the cookie on
 * another site's POST, so another site cannot log a user in or out here.
 */
@Controller('session')
export class SessionController {
  constructor(
    private readonly sessions: SessionService,
    private readonly cookies: SessionCookies,
  ) {}

  /**
   * A first visit: starts an anonymous session (what a shop does for a cart before login) and
   * sets its cookie. A request that already has a live session keeps it.
   */
  @Post('visit')
  @HttpCode(200)
  async visit(
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
  ): Promise<{ created: boolean; session: SessionView }> {
    const existing = await this.presented(request);
    if (existing) return { created: false, session: view(existing) };
    const session = await this.sessions.create<SessionData>(null, { visitedAt: new Date().toISOString(), ...userAgentOf(request) });
    this.cookies.issue(response, session);
    return { created: true, session: view(session) };
  }

  /**
   * Logs in (any username, with the demo password; rate-limited like `POST /login`) and sets a
   * cookie with a new session id: the id the browser held before login stops working at once, so
   * an id planted before login (session fixation) is worthless after it.
   *
   * - The same user signing in again: `regenerate`, the same session under a new id.
   * - An anonymous session (or another user's): a new session for this user, carrying over the
   *   anonymous session's data, and the old one destroyed. (`regenerate` keeps a session's user,
   *   so it cannot turn an anonymous session into a logged-in one.)
   */
  @Post('login')
  @HttpCode(200)
  @UseGuards(RateLimitGuard)
  @RateLimit(LOGIN_RATE_LIMIT)
  async login(
    @Body() body: { username?: unknown; password?: unknown } | undefined,
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
  ): Promise<SessionView> {
    const { username, password } = credentialsOf(body);
    if (password !== DEMO_PASSWORD) throw new UnauthorizedException('Wrong username or password');
    const userId = username.toLowerCase();
    const loggedIn: SessionData = { username, loggedInAt: new Date().toISOString(), ...userAgentOf(request) };

    const previous = await this.presented(request);
    let session: Session<SessionData> | null = null;
    if (previous?.userId === userId) {
      session = await this.sessions.regenerate<SessionData>(previous.id);
      if (session) {
        await this.sessions.update(session.id, loggedIn);
        session = { ...session, data: { ...session.data, ...loggedIn } };
      }
    }
    if (!session) {
      const carried = previous?.userId === null ? previous.data : {};
      session = await this.sessions.create<SessionData>(userId, { ...carried, ...loggedIn });
      if (previous) await this.sessions.destroy(previous.id);
    }
    this.cookies.issue(response, session);
    return view(session);
  }

  /** The session of the request (anonymous or logged in); 401 without a live one. */
  @Get('profile')
  @UseGuards(SessionGuard)
  profile(@CurrentSession() session: Session<SessionData>): SessionView {
    return view(session);
  }

  /** The user's live sessions, on every device, oldest first, marking the one of this request. */
  @Get('list')
  @UseGuards(SessionGuard)
  async list(@CurrentSession() session: Session<SessionData>): Promise<ListedSession[]> {
    const userId = requireUser(session);
    const current = session.handle;
    const sessions = await this.sessions.listForUser<SessionData>(userId);
    return sessions.sort((a, b) => a.createdAt - b.createdAt).map((listed) => listItem(listed, listed.handle === current));
  }

  /** "Log out everywhere else": ends the user's other sessions, keeping this one. */
  @Post('logout-others')
  @HttpCode(200)
  @UseGuards(SessionGuard)
  async logoutOthers(@CurrentSession() session: Session<SessionData>): Promise<{ ended: number }> {
    const userId = requireUser(session);
    return { ended: await this.sessions.destroyAllForUser(userId, { except: session.id }) };
  }

  /** Ends the session of the request, if any, and clears the cookie (so a stale cookie can always be dropped). */
  @Post('logout')
  @HttpCode(200)
  async logout(@Req() request: Request, @Res({ passthrough: true }) response: Response): Promise<{ loggedOut: boolean }> {
    const presented = this.cookies.read(request);
    const loggedOut = presented ? await this.sessions.destroy(presented.id) : false;
    this.cookies.clear(response);
    return { loggedOut };
  }

  /** The live session the request's cookie names, or null. */
  private async presented(request: Request): Promise<Session<SessionData> | null> {
    const presented = this.cookies.read(request);
    return presented ? this.sessions.get<SessionData>(presented.id) : null;
  }
}

function requireUser(session: Session): string {
  if (session.userId === null) throw new ForbiddenException('Log in first: an anonymous session has no list of sessions');
  return session.userId;
}

function userAgentOf(request: Request): Pick<SessionData, 'userAgent'> {
  const userAgent = request.headers['user-agent'];
  return userAgent ? { userAgent: userAgent.slice(0, 200) } : {};
}

function view(session: Session<SessionData>): SessionView {
  return {
    userId: session.userId,
    data: session.data,
    createdAt: iso(session.createdAt),
    lastSeenAt: iso(session.lastSeenAt),
    expiresAt: iso(session.expiresAt),
  };
}

function listItem(session: SessionInfo<SessionData>, current: boolean): ListedSession {
  return {
    handle: session.handle,
    current,
    userAgent: session.data.userAgent ?? null,
    createdAt: iso(session.createdAt),
    lastSeenAt: iso(session.lastSeenAt),
    expiresAt: iso(session.expiresAt),
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
