import { toTimerMilliseconds } from '../core/duration.js';
import { InvalidOptionError } from '../core/errors.js';
import { knownRecord } from '../core/validation.js';
import type { SessionOptions, SessionTimeouts } from './session.options.js';

/** The session options after validation, in milliseconds. */
export interface ResolvedSessionOptions {
  /** Whether the module options have a `session` section. */
  configured: boolean;
  idleTtlMs: number;
  absoluteTtlMs: number;
  touchIntervalMs: number;
}

/** Every default of the session options, in one place. */
export const DEFAULT_SESSION_OPTIONS = { idleTtl: '30m', absoluteTtl: '12h', touchInterval: '1m' } as const;

/** Validates `session` of the module options, once, at startup. */
export function resolveSessionOptions(configured: SessionOptions | undefined): ResolvedSessionOptions {
  const options = knownRecord('session', configured, ['idleTtl', 'absoluteTtl', 'touchInterval']) as SessionOptions;
  const defaults = DEFAULT_SESSION_OPTIONS;
  const resolved = {
    configured: configured !== undefined,
    ...resolveTimeouts(options, { idleTtlMs: toTimerMilliseconds(defaults.idleTtl, 'session.idleTtl'), absoluteTtlMs: toTimerMilliseconds(defaults.absoluteTtl, 'session.absoluteTtl') }, 'session'),
    touchIntervalMs: toTimerMilliseconds(options.touchInterval ?? defaults.touchInterval, 'session.touchInterval', { allowZero: true }),
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
