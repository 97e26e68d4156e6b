import { hostname } from 'node:os';
import { toMilliseconds, toTimerMilliseconds } from '../core/duration.js';
import { InvalidOptionError } from '../core/errors.js';
import { knownRecord, toBoolean, toNonEmptyString, toPositiveInteger } from '../core/validation.js';
import type { LeaderOptions, OncePerFireOptions, RuntimeJobOptions, ScheduleClock, ScheduleOptions } from './schedule.options.js';

/** The `schedule` options after validation, durations in milliseconds. */
export interface ResolvedScheduleOptions {
  /** Whether the module options have a `schedule` section. */
  configured: boolean;
  leaseMs: number;
  history: number;
  retainMs: number;
  clock: ScheduleClock;
  serverClock: boolean;
  instance: string;
}

/** One job's settings, with the module's defaults applied. */
export interface ResolvedJobOptions {
  overlap: 'skip' | 'queue';
  catchUp: 'none' | 'last';
  whenRedisDown: 'skip' | 'run-locally';
  leaseMs: number;
}

/** Every default of the schedule options, in one place. */
export const DEFAULT_SCHEDULE_OPTIONS = {
  lease: '30s',
  history: 20,
  retain: '30d',
  overlap: 'skip',
  catchUp: 'none',
  whenRedisDown: 'skip',
} as const;

const MAX_HISTORY = 1_000;
const JOB_FIELDS = ['overlap', 'catchUp', 'whenRedisDown', 'lease'];

/** Validates `schedule` of the module options, once, at startup. */
export function resolveScheduleOptions(configured: ScheduleOptions | undefined): ResolvedScheduleOptions {
  const options = knownRecord('schedule', configured, [
    'lease',
    'history',
    'retain',
    'clock',
    'serverClock',
    'instance',
  ]) as ScheduleOptions;
  const defaults = DEFAULT_SCHEDULE_OPTIONS;
  const history = toPositiveInteger('schedule.history', options.history ?? defaults.history);
  if (history > MAX_HISTORY) throw new InvalidOptionError('schedule.history', `at most ${MAX_HISTORY}`, options.history);
  const clock = options.clock ?? { now: () => Date.now() };
  if (typeof (clock as Partial<ScheduleClock>).now !== 'function')
    throw new InvalidOptionError('schedule.clock', 'an object with a now() method returning milliseconds since the epoch', clock);
  const retainMs = toMilliseconds(options.retain ?? defaults.retain, 'schedule.retain');
  if (retainMs < 1_000) throw new InvalidOptionError('schedule.retain', 'a duration of at least 1s', options.retain);
  return {
    configured: configured !== undefined,
    leaseMs: toLease(options.lease ?? defaults.lease, 'schedule.lease'),
    history,
    retainMs,
    clock,
    serverClock: toBoolean('schedule.serverClock', options.serverClock ?? true),
    instance: toNonEmptyString('schedule.instance', options.instance ?? `${hostname()}:${process.pid}`),
  };
}

/**
 * Checks a job's options (`where` names them: `@OncePerFire on Reports.nightly`), with the
 * module's defaults when given; `runtime` accepts `interval` too.
 */
export function resolveJobOptions(
  given: OncePerFireOptions | RuntimeJobOptions | undefined,
  where: string,
  defaults: Pick<ResolvedScheduleOptions, 'leaseMs'> = { leaseMs: toLease(DEFAULT_SCHEDULE_OPTIONS.lease, 'schedule.lease') },
  runtime = false,
): ResolvedJobOptions {
  const options = knownRecord(where, given, runtime ? [...JOB_FIELDS, 'interval'] : JOB_FIELDS) as RuntimeJobOptions;
  return {
    overlap: oneOf(options.overlap ?? DEFAULT_SCHEDULE_OPTIONS.overlap, ['skip', 'queue'], `${where}.overlap`),
    catchUp: oneOf(options.catchUp ?? DEFAULT_SCHEDULE_OPTIONS.catchUp, ['none', 'last'], `${where}.catchUp`),
    whenRedisDown: oneOf(
      options.whenRedisDown ?? DEFAULT_SCHEDULE_OPTIONS.whenRedisDown,
      ['skip', 'run-locally'],
      `${where}.whenRedisDown`,
    ),
    leaseMs: options.lease === undefined ? defaults.leaseMs : toLease(options.lease, `${where}.lease`),
  };
}

/** The period of a runtime interval job, if it has one. */
export function resolveInterval(given: RuntimeJobOptions | undefined, where: string): number | undefined {
  return given?.interval === undefined ? undefined : toTimerMilliseconds(given.interval, `${where}.interval`);
}

/** A leader's lease, or the module's. */
export function resolveLeaderOptions(given: LeaderOptions | undefined, defaults: Pick<ResolvedScheduleOptions, 'leaseMs'>): number {
  const options = knownRecord('options', given, ['lease']) as LeaderOptions;
  return options.lease === undefined ? defaults.leaseMs : toLease(options.lease, 'options.lease');
}

/** A lease: long enough for a renewal (a third of it) to be a timer of its own. */
function toLease(value: unknown, option: string): number {
  const ms = toTimerMilliseconds(value as number, option);
  if (ms < 30) throw new InvalidOptionError(option, 'a duration of at least 30ms', value);
  return ms;
}

function oneOf<const T extends string>(value: unknown, accepted: readonly T[], option: string): T {
  if (!accepted.includes(value as T)) throw new InvalidOptionError(option, accepted.map((one) => `'${one}'`).join(' or '), value);
  return value as T;
}
