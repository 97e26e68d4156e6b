import { toTimerMilliseconds, type Duration } from '../core/duration.js';
import { InvalidOptionError } from '../core/errors.js';
import { knownRecord } from '../core/validation.js';
import type { ResolvedFairOptions } from './lock.fair.js';
import type { AcquireOptions, LockOptions } from './lock.options.js';

/** The lock options after validation, durations in milliseconds. */
export interface ResolvedLockOptions {
  /** Whether the module options have a `lock` section (the app uses locks). */
  configured: boolean;
  ttlMs: number;
  waitMs: number;
  retry: { minDelayMs: number; maxDelayMs: number };
  redlock: { connections: string[]; driftFactor: number } | undefined;
  fair: ResolvedFairOptions;
}

/** One acquisition's settings. */
export interface ResolvedAcquireOptions {
  ttlMs: number;
  waitMs: number;
  autoExtend: boolean;
  fair: boolean;
}

/** Every default of the lock options, in one place. */
export const DEFAULT_LOCK_OPTIONS = {
  ttl: '30s',
  wait: 0,
  retry: { minDelay: '50ms', maxDelay: '1s' },
  driftFactor: 0.01,
  fair: { waiterLease: '3s', poll: '1s' },
} as const;

/** Validates `lock` of the module options, once, at startup; `connectionNames` are the configured connections. */
export function resolveLockOptions(configured: LockOptions | undefined, connectionNames: readonly string[]): ResolvedLockOptions {
  const options = knownRecord('lock', configured, ['ttl', 'wait', 'retry', 'redlock', 'fair']) as LockOptions;
  const retry = knownRecord('lock.retry', options.retry, ['minDelay', 'maxDelay']) as NonNullable<LockOptions['retry']>;
  const defaults = DEFAULT_LOCK_OPTIONS;
  const minDelayMs = toTimerMilliseconds(retry.minDelay ?? defaults.retry.minDelay, 'lock.retry.minDelay');
  const maxDelayMs = toTimerMilliseconds(retry.maxDelay ?? defaults.retry.maxDelay, 'lock.retry.maxDelay');
  if (maxDelayMs < minDelayMs)
    throw new InvalidOptionError('lock.retry.maxDelay', `at least lock.retry.minDelay (${minDelayMs}ms)`, retry.maxDelay);
  return {
    configured: configured !== undefined,
    ttlMs: toTimerMilliseconds(options.ttl ?? defaults.ttl, 'lock.ttl'),
    waitMs: toTimerMilliseconds(options.wait ?? defaults.wait, 'lock.wait', { allowZero: true }),
    retry: { minDelayMs, maxDelayMs },
    redlock: options.redlock === undefined ? undefined : resolveRedlock(options.redlock, connectionNames),
    fair: resolveFair(options.fair),
  };
}

/** Validates one acquisition's options against the module defaults; `where` names them in errors. */
export function resolveAcquireOptions(
  options: AcquireOptions,
  defaults: Pick<ResolvedLockOptions, 'ttlMs' | 'waitMs'>,
  autoExtendByDefault: boolean,
  where: string,
  fields: readonly string[],
): ResolvedAcquireOptions {
  knownRecord(where, options, fields);
  const autoExtend = options.autoExtend ?? autoExtendByDefault;
  if (typeof autoExtend !== 'boolean') throw new InvalidOptionError(`${where}.autoExtend`, 'true or false', autoExtend);
  const fair = options.fair ?? false;
  if (typeof fair !== 'boolean') throw new InvalidOptionError(`${where}.fair`, 'true or false', fair);
  return {
    ttlMs: options.ttl === undefined ? defaults.ttlMs : toTimerMilliseconds(options.ttl, `${where}.ttl`),
    waitMs:
      options.wait === undefined ? defaults.waitMs : toTimerMilliseconds(options.wait as Duration, `${where}.wait`, { allowZero: true }),
    autoExtend,
    fair,
  };
}

function resolveFair(value: unknown): ResolvedFairOptions {
  const fair = knownRecord('lock.fair', value, ['waiterLease', 'poll']) as NonNullable<LockOptions['fair']>;
  const defaults = DEFAULT_LOCK_OPTIONS.fair;
  const waiterLeaseMs = toTimerMilliseconds(fair.waiterLease ?? defaults.waiterLease, 'lock.fair.waiterLease');
  const pollMs = toTimerMilliseconds(fair.poll ?? defaults.poll, 'lock.fair.poll');
  // A waiter renews its place at each poll: two polls fit in a lease, so one late poll does not lose it.
  if (pollMs * 2 > waiterLeaseMs)
    throw new InvalidOptionError(
      'lock.fair.poll',
      `at most half of lock.fair.waiterLease (${waiterLeaseMs}ms)`,
      fair.poll ?? defaults.poll,
    );
  return { waiterLeaseMs, pollMs };
}

function resolveRedlock(value: unknown, connectionNames: readonly string[]): NonNullable<ResolvedLockOptions['redlock']> {
  const redlock = knownRecord('lock.redlock', value, ['connections', 'driftFactor']) as NonNullable<LockOptions['redlock']>;
  const { connections } = redlock;
  if (!Array.isArray(connections) || connections.length === 0)
    throw new InvalidOptionError(
      'lock.redlock.connections',
      "names of configured connections, such as ['lockA', 'lockB', 'lockC']",
      connections,
    );
  connections.forEach((name, index) => {
    if (!connectionNames.includes(name))
      throw new InvalidOptionError(
        `lock.redlock.connections[${index}]`,
        `the name of a configured connection (${connectionNames.join(', ')})`,
        name,
      );
  });
  if (new Set(connections).size !== connections.length)
    throw new InvalidOptionError('lock.redlock.connections', 'distinct connections', connections);
  const driftFactor = redlock.driftFactor ?? DEFAULT_LOCK_OPTIONS.driftFactor;
  if (typeof driftFactor !== 'number' || !(driftFactor >= 0 && driftFactor < 0.5))
    throw new InvalidOptionError('lock.redlock.driftFactor', 'a fraction from 0 to below 0.5, such as 0.01', driftFactor);
  return { connections: [...connections], driftFactor };
}
