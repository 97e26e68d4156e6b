import { createParamDecorator, Injectable, UnauthorizedException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { SessionCookies, type HttpRequestHeaders } from './session-cookies.js';
import type { Session } from './session.options.js';
import { SessionService } from './session.service.js';

/** Where the guard leaves the session on the request. */
const SESSION = Symbol('redis-patterns:session');

/**
 * Lets a request through only with a live session: from the signed session cookie, or an
 * `Authorization: Bearer <id>` header. Otherwise 401 (and a cookie that names no live session
 * is cleared). Redis unable to answer: 503 (`RedisUnavailableError`), never a hang (each read is
 * bounded by `commandTimeout`).
 * The session is then available with `@CurrentSession()`. Express and Fastify.
 *
 * @example
 * @Get('profile')
 * @UseGuards(SessionGuard)
 * profile(@CurrentSession() session: Session) { return session.data; }
 */
@Injectable()
export class SessionGuard implements CanActivate {
  constructor(
    protected readonly sessions: SessionService,
    protected readonly cookies: SessionCookies,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<HttpRequestHeaders & { [SESSION]?: Session }>();
    const presented = this.cookies.read(request);
    // Redis unable to answer: SessionService rejects with RedisUnavailableError, an HttpException
    // that Nest answers with 503 and logs no stack trace for.
    const session = presented ? await this.sessions.get(presented.id) : null;
    if (!session) {
      if (presented?.from === 'cookie') this.cookies.clear(context.switchToHttp().getResponse());
      throw new UnauthorizedException('No valid session');
    }
    request[SESSION] = session;
    return true;
  }
}

/**
 * The session `SessionGuard` found for this request.
 * @example
 * me(@CurrentSession() session: Session<{ role: string }>) { ... }
 */
export const CurrentSession = createParamDecorator(
  (_data: unknown, context: ExecutionContext): Session | undefined => context.switchToHttp().getRequest<{ [SESSION]?: Session }>()[SESSION],
);
