import { LRUCache } from 'lru-cache';
import { JsonCodec, type RedisCodec } from '../core/codec.js';

interface L1Entry {
  value: unknown;
  encoded: string | Buffer;
  freshUntil: number;
}

/**
 * The in-process tier: a bounded LRU (entries and bytes) of decoded values. Unless `shared`, each
 * hit hands out a deep copy, so a caller that mutates its result never changes what the next
 * caller gets: a structural copy for what JsonCodec decodes (plain objects, arrays, Date, Map,
 * Set, Buffer; strings are immutable and shared), a fresh decode for other codecs.
 */
export class L1Cache {
  private readonly lru: LRUCache<string, L1Entry>;
  private readonly copyable: boolean;
  /**
   * Counts invalidations. A reader notes it before asking Redis and stores what Redis answered
   * only if no invalidation came in meanwhile, so a late answer cannot bring back a dropped entry.
   */
  epoch = 0;

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
    this.copyable = codec instanceof JsonCodec;
  }

  /** The value (or a fresh copy of it), or undefined on a miss. Wrapped so a cached undefined is a hit. */
  get(key: string): { value: unknown } | undefined {
    const entry = this.lru.get(key);
    if (!entry) return undefined;
    if (this.settings.shared) return { value: entry.value };
    return { value: this.copyable ? copyDecoded(entry.value) : this.codec.decode(entry.encoded, key) };
  }

  /** Keeps the entry no longer than L1's ttl, nor past the moment the Redis entry stops being fresh. */
  set(key: string, value: unknown, encoded: string | Buffer, freshUntil: number): void {
    const ttl = Math.min(this.settings.ttlMs, freshUntil - Date.now());
    if (ttl <= 0) return;
    // The stored value is never handed out when copies are made: keep a private copy of it.
    const kept = this.settings.shared ? value : this.copyable ? copyDecoded(value) : undefined;
    this.lru.set(key, { value: kept, encoded, freshUntil }, { ttl });
  }

  delete(keys: readonly string[]): void {
    this.epoch++;
    for (const key of keys) this.lru.delete(key);
  }

  deleteMatching(pattern: RegExp): void {
    this.epoch++;
    for (const key of [...this.lru.keys()]) if (pattern.test(key)) this.lru.delete(key);
  }

  clear(): void {
    this.epoch++;
    this.lru.clear();
  }

  get size(): number {
    return this.lru.size;
  }
}

/** A deep copy of a value as JsonCodec decodes it. */
function copyDecoded(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    const copy = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) copy[i] = copyDecoded(value[i]);
    return copy;
  }
  if (value instanceof Date) return new Date(value.getTime());
  if (value instanceof Map) return new Map([...value].map(([key, item]) => [copyDecoded(key), copyDecoded(item)]));
  if (value instanceof Set) return new Set([...value].map(copyDecoded));
  if (value instanceof Uint8Array) return Buffer.isBuffer(value) ? Buffer.from(value) : new Uint8Array(value);
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const item = copyDecoded((value as Record<string, unknown>)[key]);
    if (key === '__proto__') Object.defineProperty(copy, key, { value: item, enumerable: true, writable: true, configurable: true });
    else copy[key] = item;
  }
  return copy;
}
