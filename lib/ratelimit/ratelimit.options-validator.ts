import { toMilliseconds, toTimerMilliseconds } from '../core/duration.js';
import { InvalidOptionError, ValueDescription } from '../core/errors.js';
import { isRecord, knownRecord, toNonEmptyString, toPositiveInteger } from '../core/validation.js';
import type { MethodRateLimitPolicy, RateLimitHeaders, RateLimitOptions, RateLimitPolicy } from './ratelimit.options.js';

/** Algorithm codes of ratelimit.lua. */
export const ALGORITHM_CODES = { 'fixed-window': 1, 'sliding-window': 2, 'token-bucket': 3 } as const;

/** A policy after validation: numbers in milliseconds, defaults applied. */
export interface ResolvedPolicy {
  name: string;
  algorithm: 1 | 2 | 3;
  limit: number;
  windowMs: number;
  burst: number;
  blockMs: number;
  /** `afterBlock: 'reset'`: the count starts afresh when a block ends. */
  resetAfterBlock: boolean;
  /** The most one call may cost: the burst of a token bucket, otherwise the limit. */
  capacity: number;
  /** What ratelimit.lua reads of the policy, as one argument: `algorithm:limit:window:burst:block:reset` (reset: 1 after a block, else 0). */
  scriptConfig: string;
  cost: number | ((...input: never[]) => number | Promise<number>);
  by: RateLimitPolicy['by'];
  onStoreError: 'open' | 'closed' | undefined;
  /** Method policies only. */
  key?: (...args: never[]) => string;
  onLimit: 'throw' | 'wait';
  maxWaitMs: number;
}

/** The rate-limit options after validation. */
export interface ResolvedRateLimitOptions {
  policies: ResolvedPolicy[];
  headers: RateLimitHeaders;
  onStoreError: 'open' | 'closed';
}

/** Every default of rate limiting, in one place. */
export const DEFAULT_RATE_LIMIT_OPTIONS = {
  policy: {
    name: 'default',
    algorithm: 'sliding-window',
    by: 'ip',
    cost: 1,
    blockFor: 0,
    afterBlock: 'continue',
    onLimit: 'throw',
    maxWait: '30s',
  },
  headers: 'both',
  onStoreError: 'open',
} as const;

const POLICY_FIELDS = ['name', 'limit', 'window', 'algorithm', 'burst', 'by', 'cost', 'blockFor', 'afterBlock', 'onStoreError'];
const METHOD_FIELDS = [...POLICY_FIELDS.filter((field) => field !== 'by'), 'key', 'onLimit', 'maxWait'];

/** Validates `rateLimit` of the module options, once, at startup. */
export function resolveRateLimitOptions(configured: RateLimitOptions | undefined): ResolvedRateLimitOptions {
  const options = knownRecord('rateLimit', configured, ['policies', 'headers', 'onStoreError']) as RateLimitOptions;
  const defaults = DEFAULT_RATE_LIMIT_OPTIONS;
  if (options.policies !== undefined && !Array.isArray(options.policies))
    throw new InvalidOptionError('rateLimit.policies', 'an array of policies', options.policies);
  const policies = (options.policies ?? []).map((policy, index) => resolvePolicy(policy, `rateLimit.policies[${index}]`));
  assertDistinctNames(
    policies.map((policy) => policy.name),
    'rateLimit.policies',
  );
  const headers = options.headers ?? defaults.headers;
  if (!['both', 'ietf', 'legacy', false].includes(headers))
    throw new InvalidOptionError('rateLimit.headers', "'both', 'ietf', 'legacy' or false", headers);
  return { policies, headers, onStoreError: toStoreErrorMode('rateLimit.onStoreError', options.onStoreError ?? defaults.onStoreError) };
}

/**
 * Validates one policy; `where` names it in errors (`@RateLimit on Search.find`, `rateLimit.policies[0]`).
 * A policy with `key` is a method policy.
 */
export function resolvePolicy(policy: RateLimitPolicy | MethodRateLimitPolicy<never[]>, where: string): ResolvedPolicy {
  if (!isRecord(policy)) throw new InvalidOptionError(where, 'a rate-limit policy object', policy);
  const isMethodPolicy = 'key' in policy;
  knownRecord(where, policy, isMethodPolicy ? METHOD_FIELDS : POLICY_FIELDS);
  const defaults = DEFAULT_RATE_LIMIT_OPTIONS.policy;
  const option = (field: string) => `${where}.${field}`;
  const algorithmName = policy.algorithm ?? defaults.algorithm;
  const algorithm = ALGORITHM_CODES[algorithmName as keyof typeof ALGORITHM_CODES];
  if (algorithm === undefined)
    throw new InvalidOptionError(option('algorithm'), "'sliding-window', 'fixed-window' or 'token-bucket'", algorithmName);
  const limit = toPositiveInteger(option('limit'), policy.limit);
  if (policy.burst !== undefined && algorithm !== 3)
    throw new InvalidOptionError(option('burst'), "no burst unless algorithm is 'token-bucket'", policy.burst);
  const burst = policy.burst === undefined ? limit : toPositiveInteger(option('burst'), policy.burst);
  const cost = policy.cost ?? defaults.cost;
  if (typeof cost !== 'function') toCost(cost, option('cost'));
  const capacity = algorithm === 3 ? burst : limit;
  if (typeof cost === 'number' && cost > capacity)
    throw new InvalidOptionError(option('cost'), `at most the ${algorithm === 3 ? 'burst' : 'limit'} (${capacity})`, cost);
  const by = isMethodPolicy ? undefined : ((policy as RateLimitPolicy).by ?? defaults.by);
  if (by !== undefined && by !== 'ip' && by !== 'user' && typeof by !== 'function')
    throw new InvalidOptionError(option('by'), "'ip', 'user' or a function of the ExecutionContext", by);
  const method = policy as Partial<MethodRateLimitPolicy<never[]>>;
  if (isMethodPolicy && typeof method.key !== 'function')
    throw new InvalidOptionError(option('key'), 'a function of the method arguments returning a string', method.key);
  const onLimit = method.onLimit ?? defaults.onLimit;
  if (onLimit !== 'throw' && onLimit !== 'wait') throw new InvalidOptionError(option('onLimit'), "'throw' or 'wait'", onLimit);
  const windowMs = toTimerMilliseconds(policy.window, option('window'));
  const blockMs = toTimerMilliseconds(policy.blockFor ?? defaults.blockFor, option('blockFor'), { allowZero: true });
  const afterBlock = policy.afterBlock ?? defaults.afterBlock;
  if (afterBlock !== 'continue' && afterBlock !== 'reset')
    throw new InvalidOptionError(option('afterBlock'), "'continue' or 'reset'", afterBlock);
  if (policy.afterBlock !== undefined && blockMs === 0)
    throw new InvalidOptionError(option('afterBlock'), 'no afterBlock without a blockFor', policy.afterBlock);
  const resetAfterBlock = afterBlock === 'reset';
  return {
    name: toNonEmptyString(option('name'), policy.name ?? defaults.name),
    algorithm,
    limit,
    windowMs,
    burst,
    blockMs,
    resetAfterBlock,
    capacity,
    scriptConfig: `${algorithm}:${limit}:${windowMs}:${burst}:${blockMs}:${resetAfterBlock ? 1 : 0}`,
    cost: cost as ResolvedPolicy['cost'],
    by,
    onStoreError: policy.onStoreError === undefined ? undefined : toStoreErrorMode(option('onStoreError'), policy.onStoreError),
    key: method.key,
    onLimit,
    maxWaitMs: toMilliseconds(method.maxWait ?? defaults.maxWait, option('maxWait')),
  };
}

/** A call's cost: an integer of at least 1. */
export function toCost(value: unknown, option: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
    throw new InvalidOptionError(option, 'an integer of at least 1', value);
  return value;
}

export function assertDistinctNames(names: readonly string[], where: string): void {
  const repeated = names.find((name, index) => names.indexOf(name) !== index);
  if (repeated !== undefined)
    throw new InvalidOptionError(
      where,
      'policies with distinct names (give each a `name`)',
      new ValueDescription(`two named "${repeated}"`),
    );
}

function toStoreErrorMode(option: string, value: unknown): 'open' | 'closed' {
  if (value !== 'open' && value !== 'closed') throw new InvalidOptionError(option, "'open' or 'closed'", value);
  return value;
}
