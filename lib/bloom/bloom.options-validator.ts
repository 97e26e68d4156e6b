import { InvalidOptionError } from '../core/errors.js';
import { knownRecord, toPositiveInteger } from '../core/validation.js';
import type { BloomFilterOptions } from './bloom.options.js';

/** The largest bitmap Redis can hold: a string of 512 MB. */
const MAX_BITS = 2 ** 32;

/** A filter's options after validation, with its bitmap size (m) and hash count (k). */
export interface ResolvedBloomFilterOptions {
  capacity: number;
  errorRate: number;
  backend: 'auto' | 'redisbloom' | 'bitmap';
  /** Bits of the bitmap: m = -n ln p / (ln 2)^2. */
  bits: number;
  /** Hashes per item: k = round(m / n ln 2), at least 1. */
  hashes: number;
  prefill: BloomFilterOptions['prefill'];
  batchSize: number;
}

/** Every default of a filter's options, in one place. */
export const DEFAULT_BLOOM_OPTIONS = { backend: 'auto', batchSize: 1000 } as const;

/** Validates one filter's options; `where` names them in errors (`bloomFilters.products`). */
export function resolveBloomOptions(options: BloomFilterOptions | undefined, where: string): ResolvedBloomFilterOptions {
  const given = knownRecord(where, options, ['capacity', 'errorRate', 'backend', 'prefill', 'batchSize']) as Partial<BloomFilterOptions>;
  const capacity = toPositiveInteger(`${where}.capacity`, given.capacity);
  const errorRate = given.errorRate;
  if (typeof errorRate !== 'number' || !(errorRate > 0 && errorRate < 1)) throw new InvalidOptionError(`${where}.errorRate`, 'a number between 0 and 1 (exclusive)', errorRate);
  const backend = given.backend ?? DEFAULT_BLOOM_OPTIONS.backend;
  if (!['auto', 'redisbloom', 'bitmap'].includes(backend)) throw new InvalidOptionError(`${where}.backend`, "'auto', 'redisbloom' or 'bitmap'", backend);
  if (given.prefill !== undefined && typeof given.prefill !== 'function') throw new InvalidOptionError(`${where}.prefill`, 'a function of the ModuleRef returning the items', given.prefill);
  const batchSize = toPositiveInteger(`${where}.batchSize`, given.batchSize ?? DEFAULT_BLOOM_OPTIONS.batchSize);
  const bits = Math.ceil((-capacity * Math.log(errorRate)) / Math.LN2 ** 2);
  if (bits > MAX_BITS) throw new InvalidOptionError(`${where}.capacity`, `a capacity and error rate needing at most ${MAX_BITS} bits (512 MB; this needs ${bits})`, capacity);
  const hashes = Math.max(1, Math.round((bits / capacity) * Math.LN2));
  return { capacity, errorRate, backend, bits, hashes, prefill: given.prefill, batchSize };
}
