import { LRUCache } from 'lru-cache';
import type { RedisCodec } from '../core/codec.js';

interface L1Entry {
  value: unknown;
  encoded: string | Buffer;
  freshUntil: number;
}

/**
 * The in-process tier: a bounded LRU (entries and bytes) of decoded values. Unless `shared`, each
 * hit decodes the stored encoding again, so a caller that mutates its result never changes what
 * the next caller gets.
 */
export class L1Cache {
  private readonly lru: LRUCache<string, L1Entry>;

  constructor(
    private readonly codec: RedisCodec,
    private readonly settings: { maxEntries: number; maxBytes: number; ttlMs: number; shared: boolean },
  ) {
    this.lru = new LRUCache<string, L1Entry>({
      max: settings.maxEntries,
      maxSize: settings.maxBytes,
      sizeCalculation: (entry) => Math.max(1, entry.encoded.length),
      ttlAutopurge: false,
    });
  }

  /** The value (or a fresh copy of it), or undefined on a miss. Wrapped so a cached undefined is a hit. */
  get(key: string): { value: unknown } | undefined {
    const entry = this.lru.get(key);
    if (!entry) return undefined;
    return { value: this.settings.shared ? entry.value : this.codec.decode(entry.encoded, key) };
  }

  /** Keeps the entry no longer than L1's ttl, nor past the moment the Redis entry stops being fresh. */
  set(key: string, value: unknown, encoded: string | Buffer, freshUntil: number): void {
    const ttl = Math.min(this.settings.ttlMs, freshUntil - Date.now());
    if (ttl <= 0) return;
    this.lru.set(key, { value: this.settings.shared ? value : undefined, encoded, freshUntil }, { ttl });
  }

  delete(keys: readonly string[]): void {
    for (const key of keys) this.lru.delete(key);
  }

  deleteMatching(pattern: RegExp): void {
    for (const key of [...this.lru.keys()]) if (pattern.test(key)) this.lru.delete(key);
  }

  clear(): void {
    this.lru.clear();
  }

  get size(): number {
    return this.lru.size;
  }
}
