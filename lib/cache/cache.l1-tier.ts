import type { L1Cache, L1Source } from './cache.l1.js';
import type { ResolvedCacheOptions } from './cache.options-validator.js';
import type { CacheStats } from './cache.stats.js';

/**
 * How L1 hears of changes: the bus (the instances tell each other) or Redis's own tracking of the
 * cache's keys. Each gives the {@link L1Source} that covers an entry, live only while its
 * invalidations arrive.
 */
export interface L1Invalidations {
  /** Starts listening, once (at startup when the module options have a `cache` section, else on first use). */
  start(): void;
  stop(): Promise<void>;
  /** The source whose invalidations cover `valueKey` now, if it is live. */
  sourceFor(valueKey: string): L1Source | undefined;
}

/**
 * How the cache uses its in-process tier ({@link L1Cache}): which entries go in it, hits and
 * misses counted, and entries kept only from a live source of invalidations, so no L1 entry can
 * miss one.
 */
export class L1Tier {
  constructor(
    private readonly l1: L1Cache,
    private readonly invalidations: L1Invalidations,
    private readonly settings: ResolvedCacheOptions,
    private readonly counters: CacheStats,
  ) {}

  /** Whether an entry uses L1: as it asks, else as the module's `l1.default` says; never with L1 off. */
  uses(requested: boolean | undefined): boolean {
    return this.settings.l1.enabled && (requested ?? this.settings.l1.byDefault);
  }

  /** The entry's L1 value (a copy unless L1 is shared) and when it stops being fresh, counted as an L1 hit or miss. */
  get(valueKey: string): { value: unknown; freshUntil: number } | undefined {
    return this.counted(this.l1.get(valueKey));
  }

  /** As {@link get}, with the entry's JSON text as stored, its value copied only if read (see `L1Cache.getWithJson`). */
  getWithJson(valueKey: string): { readonly value: unknown; freshUntil: number; json?: string } | undefined {
    return this.counted(this.l1.getWithJson(valueKey));
  }

  private counted<T>(hit: T | undefined): T | undefined {
    if (hit) this.counters.l1.hits++;
    else this.counters.l1.misses++;
    return hit;
  }

  /** Counts L1 invalidations: read it before asking Redis, and pass it to {@link remember} with the answer. */
  get epoch(): number {
    return this.l1.epoch;
  }

  /**
   * Keeps an entry in L1 that Redis answered (or took) after `epochBefore` was read, unless its key
   * was invalidated since (Redis's answer may predate the change), or no live source covers it.
   */
  remember(valueKey: string, value: unknown, encoded: string | Buffer, freshUntil: number, epochBefore: number): void {
    const source = this.invalidations.sourceFor(valueKey);
    if (!source) {
      this.invalidations.start();
      return;
    }
    if (this.l1.mayKeep(valueKey, epochBefore)) this.l1.set(valueKey, value, encoded, freshUntil, source);
  }

  /** Drops this instance's copies of these entries. */
  delete(valueKeys: readonly string[]): void {
    this.l1.delete(valueKeys);
  }

  /** Drops this instance's copies of the entries whose value key matches. */
  deleteMatching(pattern: RegExp): void {
    this.l1.deleteMatching(pattern);
  }
}
