import { toTimerMilliseconds } from '../core/duration.js';
import { InvalidOptionError, ValueDescription } from '../core/errors.js';
import { knownRecord, toBoolean, toNonEmptyString } from '../core/validation.js';
import type { SessionCookieOptions, SessionOptions, SessionTimeouts } from './session.options.js';

/** The session options after validation, in milliseconds. */
export interface ResolvedSessionOptions {
  /** Whether the module options have a `session` section. */
  configured: boolean;
  idleTtlMs: number;
  absoluteTtlMs: number;
  touchIntervalMs: number;
  cookie: { secrets: string[]; name: string; secure: boolean; sameSite: 'strict' | 'lax' | 'none'; path: string; domain: string | undefined } | undefined;
  bearer: boolean;
}

/** Every default of the session options, in one place. */
export const DEFAULT_SESSION_OPTIONS = {
  idleTtl: '30m',
  absoluteTtl: '12h',
  touchInterval: '1m',
  cookie: { name: 'sid', secure: true, sameSite: 'lax', path: '/' },
  bearer: true,
} as const;

/** The shortest secret accepted for signing cookies. */
const MIN_SECRET_LENGTH = 32;

/** Validates `session` of the module options, once, at startup. */
export function resolveSessionOptions(configured: SessionOptions | undefined): ResolvedSessionOptions {
  const options = knownRecord('session', configured, ['idleTtl', 'absoluteTtl', 'touchInterval', 'cookie', 'bearer']) as SessionOptions;
  const defaults = DEFAULT_SESSION_OPTIONS;
  const resolved = {
    configured: configured !== undefined,
    ...resolveTimeouts(options, { idleTtlMs: toTimerMilliseconds(defaults.idleTtl, 'session.idleTtl'), absoluteTtlMs: toTimerMilliseconds(defaults.absoluteTtl, 'session.absoluteTtl') }, 'session'),
    touchIntervalMs: toTimerMilliseconds(options.touchInterval ?? defaults.touchInterval, 'session.touchInterval', { allowZero: true }),
    cookie: options.cookie === undefined ? undefined : resolveCookie(options.cookie),
    bearer: toBoolean('session.bearer', options.bearer ?? defaults.bearer),
  };
  if (resolved.touchIntervalMs >= resolved.idleTtlMs) throw new InvalidOptionError('session.touchInterval', `less than session.idleTtl (${resolved.idleTtlMs}ms)`, options.touchInterval);
  return resolved;
}

/** The timeouts of one session: its own, else the defaults; `where` names them in errors. */
export function resolveTimeouts(options: SessionTimeouts, defaults: { idleTtlMs: number; absoluteTtlMs: number }, where: string): { idleTtlMs: number; absoluteTtlMs: number } {
  return {
    idleTtlMs: options.idleTtl === undefined ? defaults.idleTtlMs : toTimerMilliseconds(options.idleTtl, `${where}.idleTtl`),
    absoluteTtlMs: options.absoluteTtl === undefined ? defaults.absoluteTtlMs : toTimerMilliseconds(options.absoluteTtl, `${where}.absoluteTtl`),
  };
}

function resolveCookie(value: unknown): NonNullable<ResolvedSessionOptions['cookie']> {
  const cookie = knownRecord('session.cookie', value, ['secret', 'name', 'secure', 'sameSite', 'path', 'domain']) as unknown as SessionCookieOptions;
  const defaults = DEFAULT_SESSION_OPTIONS.cookie;
  const secrets = typeof cookie.secret === 'string' ? [cookie.secret] : Array.isArray(cookie.secret) ? [...cookie.secret] : [];
  if (secrets.length === 0 || secrets.some((secret) => typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH)) {
    throw new InvalidOptionError('session.cookie.secret', `a secret of at least ${MIN_SECRET_LENGTH} characters, or an array of them`, new ValueDescription('a secret that is missing or too short (not shown)'));
  }
  const sameSite = cookie.sameSite ?? defaults.sameSite;
  if (!['strict', 'lax', 'none'].includes(sameSite)) throw new InvalidOptionError('session.cookie.sameSite', "'strict', 'lax' or 'none'", sameSite);
  const secure = toBoolean('session.cookie.secure', cookie.secure ?? defaults.secure);
  if (sameSite === 'none' && !secure) throw new InvalidOptionError('session.cookie.secure', "true with sameSite 'none' (browsers reject it otherwise)", secure);
  return {
    secrets,
    name: toNonEmptyString('session.cookie.name', cookie.name ?? defaults.name),
    secure,
    sameSite,
    path: toNonEmptyString('session.cookie.path', cookie.path ?? defaults.path),
    domain: cookie.domain === undefined ? undefined : toNonEmptyString('session.cookie.domain', cookie.domain),
  };
}
