import {
  BadRequestException,
  Body,
  Controller,
  HttpCode,
  Post,
  UnauthorizedException,
  UseGuards,
  type ExecutionContext,
} from '@nestjs/common';
import { RateLimit, RateLimitGuard, type RateLimitPolicy } from '../lib/index.js';

/** Only a demo: every username logs in with this password. A real app checks a password hash. */
export const DEMO_PASSWORD = 'demo';

interface LoginRequest {
  ip?: string;
  socket?: { remoteAddress?: string };
  body?: { username?: unknown };
}

/**
 * Who a login attempt counts against: the username together with the client IP (so guessing one
 * user's password from one address is limited without locking that user out everywhere), or the
 * IP alone when the body has no username, so leaving it out does not escape the limit.
 * The IP comes last and holds no `|`, so no username can forge another caller's tracker.
 */
export function loginAttemptTracker(context: ExecutionContext): string {
  const request = context.switchToHttp().getRequest<LoginRequest>();
  const ip = request.ip ?? request.socket?.remoteAddress ?? 'unknown';
  const username = usernameOf(request.body?.username);
  return username === undefined ? `ip:${ip}` : `user:${username.toLowerCase()}|ip:${ip}`;
}

/** The trimmed username, or undefined when it is missing or not text (a lone surrogate is not: Redis keeps text as UTF-8). */
function usernameOf(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' && value.isWellFormed() ? value.trim() : undefined;
}

/** The credentials of a login body, or 400. */
export function credentialsOf(body: { username?: unknown; password?: unknown } | undefined): { username: string; password: string } {
  const username = usernameOf(body?.username);
  const password = body?.password;
  if (username === undefined || typeof password !== 'string') throw new BadRequestException('username (text) and password are required');
  return { username, password };
}

/** The brute-force policy of logins (this controller's and `POST /session/login`'s), described below. */
export const LOGIN_RATE_LIMIT: RateLimitPolicy = {
  name: 'login',
  limit: 5,
  window: '1m',
  blockFor: '15m',
  by: loginAttemptTracker,
  onStoreError: 'closed',
};

/**
 * Brute-force protection: 5 attempts per minute for a username from an IP; the 6th is rejected
 * and the caller is blocked for 15 minutes (`Retry-After: 900`). Every attempt counts, good or bad
 * (the guard runs before the handler). When Redis is down, logins answer 503 rather than go
 * unlimited (`onStoreError: 'closed'`); the module default for other routes stays 'open'.
 */
@Controller('login')
@UseGuards(RateLimitGuard)
export class LoginController {
  /** `curl -i -X POST -H 'content-type: application/json' -d '{"username":"ann","password":"guess"}' http://127.0.0.1:3000/login` */
  @Post()
  @HttpCode(200)
  @RateLimit(LOGIN_RATE_LIMIT)
  login(@Body() body: { username?: unknown; password?: unknown }): { username: string } {
    const { username, password } = credentialsOf(body);
    if (password !== DEMO_PASSWORD) throw new UnauthorizedException('Wrong username or password');
    return { username };
  }
}
