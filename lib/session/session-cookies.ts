import { Inject, Injectable } from '@nestjs/common';
import { parseCookie, stringifySetCookie } from 'cookie';
import { sign, unsign } from 'cookie-signature';
import { RedisPatternsError } from '../core/errors.js';
import { SESSION_OPTIONS, type Session } from './session.options.js';
import { SessionService } from './session.service.js';
import type { ResolvedSessionOptions } from './session.options-validator.js';

/** A response of Express (`setHeader`/`getHeader`) or Fastify (`header`/`getHeader`). */
interface HttpResponse {
  setHeader?(name: string, value: string | string[]): unknown;
  header?(name: string, value: string | string[]): unknown;
  getHeader(name: string): unknown;
}

/** A request with its headers. */
export interface HttpRequestHeaders {
  headers: Record<string, string | string[] | undefined>;
}

/**
 * The signed session cookie (`session.cookie` options): HttpOnly, Secure and SameSite as
 * configured, signed with HMAC-SHA256 by cookie-signature. Works with Express and Fastify.
 *
 * @example
 * const session = await this.sessions.create(user.id);
 * this.cookies.issue(response, session);
 */
@Injectable()
export class SessionCookies {
  constructor(
    @Inject(SESSION_OPTIONS) private readonly settings: ResolvedSessionOptions,
    private readonly sessions: SessionService,
  ) {}

  /** The session id of the request: from its cookie (when the signature holds) or its Bearer header. */
  read(request: HttpRequestHeaders): { id: string; from: 'cookie' | 'bearer' } | undefined {
    const cookie = this.settings.cookie;
    const header = request.headers.cookie;
    let badCookie = false;
    if (cookie && typeof header === 'string') {
      const signed = parseCookie(header)[cookie.name];
      if (signed !== undefined) {
        for (const secret of cookie.secrets) {
          const id = unsign(signed, secret);
          if (id !== false) return { id, from: 'cookie' };
        }
        badCookie = true;
      }
    }
    const authorization = request.headers.authorization;
    const bearer = typeof authorization === 'string' ? /^bearer\s+(\S+)\s*$/i.exec(authorization)?.[1] : undefined;
    if (this.settings.bearer && bearer) return { id: bearer, from: 'bearer' };
    // A cookie whose signature fails names no session; it is reported so the guard can clear it.
    return badCookie ? { id: '', from: 'cookie' } : undefined;
  }

  /**
   * Sets the signed cookie for this session, expiring with its absolute timeout (on Redis's
   * clock, as learned by `SessionService`, so this host's clock plays no part).
   */
  issue(response: HttpResponse, session: Pick<Session, 'id' | 'createdAt'>, absoluteTtlMs = this.settings.absoluteTtlMs): void {
    const cookie = this.requireCookie();
    const maxAge = Math.max(0, Math.floor((session.createdAt + absoluteTtlMs - this.sessions.now()) / 1000));
    this.append(response, stringifySetCookie(cookie.name, sign(session.id, cookie.secrets[0]), { ...this.attributes(), maxAge }));
  }

  /** Clears the cookie. */
  clear(response: HttpResponse): void {
    const cookie = this.requireCookie();
    this.append(response, stringifySetCookie(cookie.name, '', { ...this.attributes(), expires: new Date(0) }));
  }

  private attributes() {
    const { secure, sameSite, path, domain } = this.requireCookie();
    return { httpOnly: true, secure, sameSite, path, ...(domain === undefined ? {} : { domain }) } as const;
  }

  /** Adds a Set-Cookie header, keeping any others (Fastify's `header` appends Set-Cookie by itself). */
  private append(response: HttpResponse, value: string): void {
    if (typeof response.setHeader !== 'function') {
      response.header?.('set-cookie', value);
      return;
    }
    const existing = response.getHeader('set-cookie');
    response.setHeader('set-cookie', [...(Array.isArray(existing) ? existing : typeof existing === 'string' ? [existing] : []), value]);
  }

  private requireCookie(): NonNullable<ResolvedSessionOptions['cookie']> {
    if (!this.settings.cookie)
      throw new RedisPatternsError('Session cookies need `session.cookie` in the module options (at least a `secret`).');
    return this.settings.cookie;
  }
}
