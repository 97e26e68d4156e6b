import { toTimerMilliseconds } from '../core/duration.js';
import { InvalidOptionError } from '../core/errors.js';
import { knownRecord, toPositiveInteger } from '../core/validation.js';
import type { OptimisticOptions, TransactionOptions } from './transaction.options.js';

/** The `transaction` section after validation, durations in milliseconds. */
export interface ResolvedTransactionOptions {
  poolSize: number;
  acquireTimeoutMs: number;
}

/** One call's settings. */
export interface ResolvedOptimisticOptions {
  maxAttempts: number;
  backoff: { minDelayMs: number; maxDelayMs: number };
}

/** Every default of the transaction options, in one place. */
export const DEFAULT_TRANSACTION_OPTIONS = {
  poolSize: 4,
  acquireTimeout: '1s',
  maxAttempts: 10,
  backoff: { minDelay: '5ms', maxDelay: '250ms' },
} as const;

/** The largest pool: each connection is a socket on the server. */
const MAX_POOL_SIZE = 1_000;

/** Validates `transaction` of the module options, once, at startup. */
export function resolveTransactionOptions(given: TransactionOptions | undefined): ResolvedTransactionOptions {
  const options = knownRecord('transaction', given, ['poolSize', 'acquireTimeout']) as TransactionOptions;
  const poolSize = options.poolSize ?? DEFAULT_TRANSACTION_OPTIONS.poolSize;
  if (!Number.isSafeInteger(poolSize) || poolSize < 1 || poolSize > MAX_POOL_SIZE)
    throw new InvalidOptionError('transaction.poolSize', `an integer from 1 to ${MAX_POOL_SIZE}`, poolSize);
  return {
    poolSize,
    acquireTimeoutMs: toTimerMilliseconds(
      options.acquireTimeout ?? DEFAULT_TRANSACTION_OPTIONS.acquireTimeout,
      'transaction.acquireTimeout',
      {
        allowZero: true,
      },
    ),
  };
}

/** Validates the options of one `optimistic` call. */
export function resolveOptimisticOptions(given: OptimisticOptions | undefined): ResolvedOptimisticOptions {
  const options = knownRecord('options', given, ['maxAttempts', 'backoff']) as OptimisticOptions;
  const backoff = knownRecord('options.backoff', options.backoff, ['minDelay', 'maxDelay']) as NonNullable<OptimisticOptions['backoff']>;
  const defaults = DEFAULT_TRANSACTION_OPTIONS;
  const minDelayMs = toTimerMilliseconds(backoff.minDelay ?? defaults.backoff.minDelay, 'options.backoff.minDelay', { allowZero: true });
  const maxDelayMs = toTimerMilliseconds(backoff.maxDelay ?? defaults.backoff.maxDelay, 'options.backoff.maxDelay', { allowZero: true });
  if (maxDelayMs < minDelayMs)
    throw new InvalidOptionError('options.backoff.maxDelay', `at least options.backoff.minDelay (${minDelayMs}ms)`, backoff.maxDelay);
  return {
    maxAttempts: toPositiveInteger('options.maxAttempts', options.maxAttempts ?? defaults.maxAttempts),
    backoff: { minDelayMs, maxDelayMs },
  };
}
