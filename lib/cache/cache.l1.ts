import { LRUCache } from 'lru-cache';
import { JsonCodec, type RedisCodec } from '../core/codec.js';

/** How many keys' last invalidations are remembered for the reads in flight (past it, all count as invalidated). */
const MAX_STAMPED_KEYS = 8_192;

/** `performance.now()` as read by the first lease check of the current run of synchronous work. */
let runNow: number | undefined;
const forgetRunNow = () => {
  runNow = undefined;
};

/**
 * The time for lease checks: the clock is read once per run of synchronous work (an I/O or timer
 * callback with the ticks and promise jobs it queues), and forgotten when the run ends. A clock
 * read costs as much as an L1 hit on some virtual machines; and every read in one run was asked for
 * by an event that arrived before the run began, so judging it by the run's first reading is never
 * more lenient than judging it by when it was asked.
 */
function leaseNow(): number {
  if (runNow === undefined) {
    runNow = performance.now();
    process.nextTick(forgetRunNow);
  }
  return runNow;
}

/**
 * Where an L1 entry hears of changes to its Redis key: the bus, or one tracked Redis server. An
 * entry is kept only from a live source, and served only while its source has confirmed delivery
 * lately (`servingUntil`, renewed by each heartbeat): a channel that stalls without dropping
 * stops L1 answering, rather than letting it serve what it can no longer hear about.
 */
export class L1Source {
  /** Whether invalidations arrive now: entries are kept only then. */
  live = false;
  /** `performance.now()` until which its entries may be served; Infinity for a source that needs no heartbeat. */
  servingUntil = 0;

  /** A source that is always live and needs no heartbeat: L1 without invalidation, entries live out their TTL. */
  static always(): L1Source {
    const source = new L1Source();
    source.live = true;
    source.servingUntil = Number.POSITIVE_INFINITY;
    return source;
  }
}

interface L1Entry {
  value: unknown;
  encoded: string | Buffer;
  freshUntil: number;
  source: L1Source;
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
   * Counts invalidations. A reader notes it before asking Redis, and keeps what Redis answered
   * only if its key was not invalidated since ({@link mayKeep}): a late answer cannot bring back a
   * dropped entry. Each key's last invalidation is remembered (for the last few thousand keys);
   * a clear, a pattern or a lost source moves `floor`, which counts as an invalidation of every key.
   */
  epoch = 0;
  private floor = 0;
  private readonly stamps = new Map<string, number>();

  constructor(
    private readonly codec: RedisCodec,
    private readonly settings: { maxEntries: number; maxBytes: number; ttlMs: number; shared: boolean },
    /** Counts the times L1 dropped entries because invalidations may have been missed. */
    private readonly counts: { flushes: number },
  ) {
    this.lru = new LRUCache<string, L1Entry>({
      max: settings.maxEntries,
      maxSize: settings.maxBytes,
      sizeCalculation: (entry) => Math.max(1, entry.encoded.length),
      ttlAutopurge: false,
    });
    this.copyable = codec instanceof JsonCodec;
  }

  /** The value (or a fresh copy of it) and when it stops being fresh, or undefined on a miss. Wrapped so a cached undefined is a hit. */
  get(key: string): { value: unknown; freshUntil: number } | undefined {
    const entry = this.serving(key);
    return entry && { value: this.handOut(entry, key), freshUntil: entry.freshUntil };
  }

  /**
   * As {@link get}, with the entry's JSON text as stored when a JsonCodec wrote it untagged
   * (`json`), for a reader that may pass that text on instead: the value is copied only if read.
   */
  getWithJson(key: string): { readonly value: unknown; freshUntil: number; json?: string } | undefined {
    const entry = this.serving(key);
    if (!entry) return undefined;
    const json = this.codec instanceof JsonCodec ? this.codec.plainJsonText(entry.encoded) : undefined;
    return new L1EntryWithJson(entry.freshUntil, json, () => this.handOut(entry, key));
  }

  /** The entry of `key` while its source still vouches for it. */
  private serving(key: string): L1Entry | undefined {
    const entry = this.lru.get(key);
    if (!entry) return undefined;
    const until = entry.source.servingUntil;
    return until !== Number.POSITIVE_INFINITY && leaseNow() >= until ? undefined : entry;
  }

  /** What a caller gets of an entry: its value when L1 is shared, else a copy of it. */
  private handOut(entry: L1Entry, key: string): unknown {
    if (this.settings.shared) return entry.value;
    return this.copyable ? copyDecoded(entry.value) : this.codec.decode(entry.encoded, key);
  }

  /** Whether an answer for `key` asked for when the epoch was `epochBefore` may be kept: no invalidation of it since. */
  mayKeep(key: string, epochBefore: number): boolean {
    return epochBefore >= this.floor && (this.stamps.get(key) ?? 0) <= epochBefore;
  }

  /** Keeps the entry no longer than L1's ttl, nor past the moment the Redis entry stops being fresh. */
  set(key: string, value: unknown, encoded: string | Buffer, freshUntil: number, source: L1Source): void {
    const ttl = Math.min(this.settings.ttlMs, freshUntil - Date.now());
    if (ttl <= 0) return;
    // The stored value is never handed out when copies are made: keep a private copy of it.
    const kept = this.settings.shared ? value : this.copyable ? copyDecoded(value) : undefined;
    this.lru.set(key, { value: kept, encoded, freshUntil, source }, { ttl });
  }

  delete(keys: readonly string[]): void {
    const stamp = ++this.epoch;
    for (const key of keys) {
      this.lru.delete(key);
      this.stamps.delete(key);
      this.stamps.set(key, stamp);
    }
    // Forgetting the oldest stamps: reads that began before them may no longer keep anything. Only
    // past the bound: iterating from the start skips every stamp deleted since the Map last
    // rehashed, which a write of each of a thousand keys in turn leaves behind.
    if (this.stamps.size <= MAX_STAMPED_KEYS) return;
    for (const [key, oldest] of this.stamps) {
      if (this.stamps.size <= MAX_STAMPED_KEYS) break;
      this.stamps.delete(key);
      this.floor = Math.max(this.floor, oldest);
    }
  }

  deleteMatching(pattern: RegExp): void {
    this.raiseFloor();
    for (const key of [...this.lru.keys()]) if (pattern.test(key)) this.lru.delete(key);
  }

  /** Drops every entry: invalidations may have been missed. */
  clear(): void {
    this.raiseFloor();
    this.counts.flushes++;
    this.lru.clear();
  }

  /** Drops the entries of one source: invalidations from it may have been missed. */
  clearSource(source: L1Source): void {
    this.raiseFloor();
    this.counts.flushes++;
    for (const [key, entry] of [...this.lru.entries()]) if (entry.source === source) this.lru.delete(key);
  }

  get size(): number {
    return this.lru.size;
  }

  private raiseFloor(): void {
    this.floor = ++this.epoch;
    this.stamps.clear();
  }
}

/** An entry of {@link L1Cache.getWithJson}: its value is handed out when first read. */
class L1EntryWithJson {
  private handedOut?: { value: unknown };

  constructor(
    readonly freshUntil: number,
    readonly json: string | undefined,
    private readonly handOut: () => unknown,
  ) {}

  get value(): unknown {
    this.handedOut ??= { value: this.handOut() };
    return this.handedOut.value;
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
