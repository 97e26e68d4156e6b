import { toMilliseconds, toPositiveMilliseconds } from '../core/duration.js';
import { InvalidOptionError, ValueDescription } from '../core/errors.js';
import { knownRecord, toBoolean, toNonEmptyString, toPositiveInteger } from '../core/validation.js';
import type { OnSessionLimit, SessionCookieOptions, SessionLimits, SessionOptions, SessionTimeouts } from './session.options.js';

/** The session options after validation, in milliseconds. */
export interface ResolvedSessionOptions {
  /** Whether the module options have a `session` section. */
  configured: boolean;
  idleTtlMs: number;
  absoluteTtlMs: number;
  touchIntervalMs: number;
  cookie:
    | { secrets: string[]; name: string; secure: boolean; sameSite: 'strict' | 'lax' | 'none'; path: string; domain: string | undefined }
    | undefined;
  bearer: boolean;
  /** Undefined for no limit. */
  maxSessionsPerUser: number | undefined;
  onLimit: OnSessionLimit;
}

/** A seat limit in force: see `SessionLimits`. */
export interface SeatLimit {
  maxSessionsPerUser: number;
  onLimit: OnSessionLimit;
}

/** Every default of the session options, in one place. */
export const DEFAULT_SESSION_OPTIONS = {
  idleTtl: '30m',
  absoluteTtl: '12h',
  touchInterval: '1m',
  cookie: { name: 'sid', secure: true, sameSite: 'lax', path: '/' },
  bearer: true,
  onLimit: 'evict-oldest',
} as const;

const ON_LIMIT: readonly OnSessionLimit[] = ['reject', 'evict-oldest'];

/** The shortest secret accepted for signing cookies. */
const MIN_SECRET_LENGTH = 32;
/** A cookie name: an RFC 6265 token. */
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A cookie path: starts with '/', printable ASCII without ';'. */
const COOKIE_PATH = /^\/[\x20-\x3a\x3c-\x7e]*$/;
/** A cookie domain: host name labels, optionally with a leading dot. */
const COOKIE_DOMAIN = /^\.?[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** Validates `session` of the module options, once, at startup. */
export function resolveSessionOptions(configured: SessionOptions | undefined): ResolvedSessionOptions {
  const options = knownRecord('session', configured, [
    'idleTtl',
    'absoluteTtl',
    'touchInterval',
    'cookie',
    'bearer',
    'maxSessionsPerUser',
    'onLimit',
  ]) as SessionOptions;
  const defaults = DEFAULT_SESSION_OPTIONS;
  const resolved = {
    configured: configured !== undefined,
    ...resolveTimeouts(
      options,
      {
        idleTtlMs: toPositiveMilliseconds(defaults.idleTtl, 'session.idleTtl'),
        absoluteTtlMs: toPositiveMilliseconds(defaults.absoluteTtl, 'session.absoluteTtl'),
      },
      'session',
    ),
    touchIntervalMs: toMilliseconds(options.touchInterval ?? defaults.touchInterval, 'session.touchInterval'),
    cookie: options.cookie === undefined ? undefined : resolveCookie(options.cookie),
    bearer: toBoolean('session.bearer', options.bearer ?? defaults.bearer),
    ...resolveLimitOptions(options, { maxSessionsPerUser: undefined, onLimit: defaults.onLimit }, 'session'),
  };
  if (resolved.touchIntervalMs >= resolved.idleTtlMs)
    throw new InvalidOptionError('session.touchInterval', `less than session.idleTtl (${resolved.idleTtlMs}ms)`, options.touchInterval);
  return resolved;
}

/** The timeouts of one session: its own, else the defaults; `where` names them in errors. No timer waits for them, so they may exceed 24 days. */
export function resolveTimeouts(
  options: SessionTimeouts,
  defaults: { idleTtlMs: number; absoluteTtlMs: number },
  where: string,
): { idleTtlMs: number; absoluteTtlMs: number } {
  return {
    idleTtlMs: options.idleTtl === undefined ? defaults.idleTtlMs : toPositiveMilliseconds(options.idleTtl, `${where}.idleTtl`),
    absoluteTtlMs:
      options.absoluteTtl === undefined ? defaults.absoluteTtlMs : toPositiveMilliseconds(options.absoluteTtl, `${where}.absoluteTtl`),
  };
}

/** The seat limit options given, else the defaults; `where` names them in errors. */
function resolveLimitOptions(
  options: SessionLimits,
  defaults: Pick<ResolvedSessionOptions, 'maxSessionsPerUser' | 'onLimit'>,
  where: string,
): Pick<ResolvedSessionOptions, 'maxSessionsPerUser' | 'onLimit'> {
  const { maxSessionsPerUser, onLimit } = options;
  if (onLimit !== undefined && !ON_LIMIT.includes(onLimit))
    throw new InvalidOptionError(`${where}.onLimit`, "'reject' or 'evict-oldest'", onLimit);
  return {
    maxSessionsPerUser:
      maxSessionsPerUser === undefined ? defaults.maxSessionsPerUser : toPositiveInteger(`${where}.maxSessionsPerUser`, maxSessionsPerUser),
    onLimit: onLimit ?? defaults.onLimit,
  };
}

/** The seat limit of one call: its own options over the module's; undefined when there is none. */
export function resolveSeatLimit(options: SessionLimits, settings: ResolvedSessionOptions, where: string): SeatLimit | undefined {
  const { maxSessionsPerUser, onLimit } = resolveLimitOptions(options, settings, where);
  return maxSessionsPerUser === undefined ? undefined : { maxSessionsPerUser, onLimit };
}

function resolveCookie(value: unknown): NonNullable<ResolvedSessionOptions['cookie']> {
  const cookie = knownRecord('session.cookie', value, [
    'secret',
    'name',
    'secure',
    'sameSite',
    'path',
    'domain',
  ]) as unknown as SessionCookieOptions;
  const defaults = DEFAULT_SESSION_OPTIONS.cookie;
  const secrets = typeof cookie.secret === 'string' ? [cookie.secret] : Array.isArray(cookie.secret) ? [...cookie.secret] : [];
  if (secrets.length === 0 || secrets.some((secret) => typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH)) {
    throw new InvalidOptionError(
      'session.cookie.secret',
      `a secret of at least ${MIN_SECRET_LENGTH} characters, or an array of them`,
      new ValueDescription('a secret that is missing or too short (not shown)'),
    );
  }
  const sameSite = cookie.sameSite ?? defaults.sameSite;
  if (!['strict', 'lax', 'none'].includes(sameSite))
    throw new InvalidOptionError('session.cookie.sameSite', "'strict', 'lax' or 'none'", sameSite);
  const secure = toBoolean('session.cookie.secure', cookie.secure ?? defaults.secure);
  if (sameSite === 'none' && !secure)
    throw new InvalidOptionError('session.cookie.secure', "true with sameSite 'none' (browsers reject it otherwise)", secure);
  const name = toNonEmptyString('session.cookie.name', cookie.name ?? defaults.name);
  if (!COOKIE_NAME.test(name))
    throw new InvalidOptionError('session.cookie.name', "a cookie name of letters, digits and !#$%&'*+-.^_`|~", name);
  const path = toNonEmptyString('session.cookie.path', cookie.path ?? defaults.path);
  if (!COOKIE_PATH.test(path))
    throw new InvalidOptionError('session.cookie.path', "a path starting with '/', of printable characters without ';'", path);
  const domain = cookie.domain === undefined ? undefined : toNonEmptyString('session.cookie.domain', cookie.domain);
  if (domain !== undefined && !COOKIE_DOMAIN.test(domain))
    throw new InvalidOptionError('session.cookie.domain', 'a host name such as example.com', domain);
  // Browsers drop cookies whose prefix promises what their attributes do not keep.
  if (/^__host-/i.test(name) && (!secure || path !== '/' || domain !== undefined))
    throw new InvalidOptionError('session.cookie.name', "a __Host- name only with secure: true, path '/' and no domain", name);
  if (/^__secure-/i.test(name) && !secure)
    throw new InvalidOptionError('session.cookie.name', 'a __Secure- name only with secure: true', name);
  return { secrets, name, secure, sameSite, path, domain };
}
