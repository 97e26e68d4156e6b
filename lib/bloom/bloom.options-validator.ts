import { InvalidOptionError } from '../core/errors.js';
import { knownRecord, toBoolean, toPositiveInteger } from '../core/validation.js';
import type { BloomFilterOptions } from './bloom.options.js';

/** The largest bitmap Redis can hold: a string of 512 MB. */
const MAX_BITS = 2 ** 32;
/** More hashes per item would make each call long for Redis (an error rate below about 1e-12). */
const MAX_HASHES = 40;
/** More items per script call would block Redis for too long. */
const MAX_BATCH = 10_000;

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
  startsEmpty: boolean;
}

/** Every default of a filter's options, in one place. */
export const DEFAULT_BLOOM_OPTIONS = { backend: 'auto', batchSize: 1000, startsEmpty: false } as const;

/** Validates one filter's options; `where` names them in errors (`bloomFilters.products`). */
export function resolveBloomOptions(options: BloomFilterOptions | undefined, where: string): ResolvedBloomFilterOptions {
  const given = knownRecord(where, options, [
    'capacity',
    'errorRate',
    'backend',
    'prefill',
    'batchSize',
    'startsEmpty',
  ]) as Partial<BloomFilterOptions>;
  const capacity = toPositiveInteger(`${where}.capacity`, given.capacity);
  const errorRate = given.errorRate;
  if (typeof errorRate !== 'number' || !(errorRate > 0 && errorRate < 1))
    throw new InvalidOptionError(`${where}.errorRate`, 'a number between 0 and 1 (exclusive)', errorRate);
  const backend = given.backend ?? DEFAULT_BLOOM_OPTIONS.backend;
  if (!['auto', 'redisbloom', 'bitmap'].includes(backend))
    throw new InvalidOptionError(`${where}.backend`, "'auto', 'redisbloom' or 'bitmap'", backend);
  if (given.prefill !== undefined && typeof given.prefill !== 'function')
    throw new InvalidOptionError(`${where}.prefill`, 'a function of the ModuleRef returning the items', given.prefill);
  const batchSize = toPositiveInteger(`${where}.batchSize`, given.batchSize ?? DEFAULT_BLOOM_OPTIONS.batchSize);
  if (batchSize > MAX_BATCH) throw new InvalidOptionError(`${where}.batchSize`, `at most ${MAX_BATCH} items per call`, batchSize);
  const startsEmpty = toBoolean(`${where}.startsEmpty`, given.startsEmpty ?? DEFAULT_BLOOM_OPTIONS.startsEmpty);
  if (startsEmpty && given.prefill !== undefined)
    throw new InvalidOptionError(`${where}.startsEmpty`, 'not true together with prefill', startsEmpty);
  const bits = Math.ceil((-capacity * Math.log(errorRate)) / Math.LN2 ** 2);
  if (bits > MAX_BITS)
    throw new InvalidOptionError(
      `${where}.capacity`,
      `a capacity and error rate needing at most ${MAX_BITS} bits (512 MB; this needs ${bits})`,
      capacity,
    );
  const hashes = Math.max(1, Math.round((bits / capacity) * Math.LN2));
  if (hashes > MAX_HASHES)
    throw new InvalidOptionError(
      `${where}.errorRate`,
      `an error rate needing at most ${MAX_HASHES} hashes per item (this needs ${hashes})`,
      errorRate,
    );
  return { capacity, errorRate, backend, bits, hashes, prefill: given.prefill, batchSize, startsEmpty };
}
