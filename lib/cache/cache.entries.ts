import { JsonCodec, type RedisCodec } from '../core/codec.js';
import { toMilliseconds, toPositiveMilliseconds } from '../core/duration.js';
import { mapBounded } from '../core/bounded.js';
import type { RedisClient } from '../core/redis-client.js';
import { RandomTokens } from '../core/random-tokens.js';
import { RedisScript } from '../core/redis-script.js';
import type { CacheInvalidationBus } from './cache.bus.js';
import { newEpoch } from './cache.epochs.js';
import { packEntry } from './cache.entry.js';
import type { CacheFailures } from './cache.failures.js';
import type { EntryKeys } from './cache.keys.js';
import type { L1Tier } from './cache.l1-tier.js';
import { toJitter, type ResolvedCacheOptions } from './cache.options-validator.js';
import type { CacheEntryOptions } from './cache.options.js';

const missScript = RedisScript.fromFile(new URL('./cache-miss.lua', import.meta.url));
const refreshLockScript = RedisScript.fromFile(new URL('./cache-refresh-lock.lua', import.meta.url));
const storeScript = RedisScript.fromFile(new URL('./cache-store.lua', import.meta.url));
const writeScript = RedisScript.fromFile(new URL('./cache-write.lua', import.meta.url));

/** How long an eviction's generation bump is remembered: longer than any loader runs. */
const GENERATION_TTL_MS = 3_600_000;
/** How many entries `delete` deletes at once. */
const DELETE_CONCURRENCY = 64;
/** A fresh generation token for a key that is written or deleted. */
const generations = new RandomTokens(9, 'base64url');
const newGeneration = () => generations.next();

/** What {@link CacheEntries.decodeOrDrop} returns for an entry the codec cannot read. */
export const UNREADABLE = Symbol('unreadable');

/** A value ready to go to Redis: the stored payload, its lifetimes, and its encoding (for L1). */
export interface PreparedEntry {
  payload: string | Buffer;
  /** How long Redis keeps it: ttl (jittered), then the stale-while-revalidate window; Infinity when it never expires. */
  pxMs: number;
  freshUntil: number;
  encoded: string | Buffer;
}

/**
 * What cache-miss.lua found: the value, if one appeared meanwhile; otherwise the key's generation
 * and its slot's epoch (Buffers with a binary codec), and whether this caller took the stampede
 * lock (1) or not (0).
 */
export type MissReply = [1, string | Buffer] | [0, string | Buffer, number, string | Buffer];

/** What a load must find unchanged when it stores: the key's generation and its slot's epoch. */
export interface LoadStart {
  generation: string;
  epoch: string;
}

/**
 * The cache's entries as Redis holds them: reads, the Lua scripts that write, store and miss,
 * deletes that bump generations (so loads in flight do not store), and the lock of a background
 * refresh. Nothing here decides what a failure means, except for work no caller waits on.
 */
export class CacheEntries {
  constructor(
    private readonly redis: RedisClient,
    private readonly codec: RedisCodec,
    private readonly settings: ResolvedCacheOptions,
    private readonly l1: L1Tier,
    private readonly bus: CacheInvalidationBus,
    private readonly failures: CacheFailures,
  ) {}

  /**
   * GET of an entry (getBuffer with a binary codec). Not async, for the hot path: the caller
   * awaits ioredis's own promise, then tells `failures` that Redis answered.
   */
  read(valueKey: string): Promise<string | Buffer | null> {
    return this.codec.binary ? this.redis.getBuffer(valueKey) : this.redis.get(valueKey);
  }

  /** {@link read}, then notes that Redis answered (an outage ends after a quiet second). */
  async readAndNote(valueKey: string): Promise<string | Buffer | null> {
    const raw = await this.read(valueKey);
    this.failures.answered();
    return raw;
  }

  /**
   * An entry the codec cannot read (corrupt, or written by an older codec) counts as a miss: it is
   * logged, counted as an error, and deleted so the loader's value replaces it. The delete is not
   * awaited: it goes out on the entry's connection before any write of the miss that follows.
   */
  decodeOrDrop(valueKey: string, encoded: string | Buffer): unknown {
    try {
      return this.codec.decode(encoded, valueKey);
    } catch (error) {
      this.failures.unreadable(valueKey, error);
      this.delete([valueKey]).catch((deleteError: unknown) =>
        this.failures.noteFailure(deleteError, `delete the unreadable entry "${valueKey}"`),
      );
      return UNREADABLE;
    }
  }

  /** The miss path's round trip (cache-miss.lua): the value if it appeared, else the generation and, with a `token`, the lock. */
  miss(keys: EntryKeys, token: string): Promise<MissReply> {
    return missScript.run(
      this.redis,
      [keys.value, keys.generation, keys.lock, keys.epoch],
      [token, this.settings.stampede.lockTtlMs, newEpoch()],
      {
        buffers: this.codec.binary === true,
      },
    );
  }

  /** Reads the value and whether the stampede lock is still held, for a caller waiting on another instance's load. */
  poll(keys: EntryKeys): Promise<[string | Buffer | null, number]> {
    return Promise.all([this.readAndNote(keys.value), this.redis.exists(keys.lock)]);
  }

  /**
   * Takes the stampede lock for a background refresh (cache-refresh-lock.lua): what its store must
   * find unchanged, or undefined when another holds the lock.
   */
  async lockForRefresh(keys: EntryKeys, token: string): Promise<LoadStart | undefined> {
    const reply = await refreshLockScript.run<[string, string] | null>(
      this.redis,
      [keys.generation, keys.lock, keys.epoch],
      [token, this.settings.stampede.lockTtlMs, newEpoch()],
    );
    return reply === null ? undefined : { generation: reply[0], epoch: reply[1] };
  }

  /** Stores a loaded entry unless its generation or its slot's epoch moved since `began` (cache-store.lua), releasing the lock of `token`: 1 when stored. */
  store(keys: EntryKeys, began: LoadStart, entry: PreparedEntry, token: string): Promise<number> {
    return storeScript.run<number>(
      this.redis,
      [keys.value, keys.generation, keys.lock, keys.epoch],
      [began.generation, entry.payload, pxArgument(entry.pxMs), token, began.epoch],
    );
  }

  /** Releases the stampede lock if `token` still holds it; a failure is only noted (the lock expires). */
  async releaseLock(keys: EntryKeys, token: string): Promise<void> {
    await storeScript
      .run(this.redis, [keys.value, keys.generation, keys.lock, keys.epoch], ['', '', 0, token, ''])
      .catch((error: unknown) => this.failures.noteFailure(error, `release the stampede lock of "${keys.value}"`));
  }

  /** Writes an entry with a new generation, so loads in flight will not overwrite it. */
  async write(keys: EntryKeys, entry: PreparedEntry): Promise<void> {
    await writeScript.run(
      this.redis,
      [keys.value, keys.generation],
      [newGeneration(), GENERATION_TTL_MS, entry.payload, pxArgument(entry.pxMs)],
    );
  }

  /**
   * Deletes entries, each with a new generation so a load of it in flight does not store
   * (cache-write.lua, a bounded number at once), and drops this instance's L1 copies; with
   * `announce`, tells the other instances to drop theirs.
   * @returns how many entries existed.
   */
  async delete(valueKeys: readonly string[], announce = true): Promise<number> {
    try {
      const deleted = await mapBounded(valueKeys, DELETE_CONCURRENCY, (key) =>
        writeScript.run<number>(this.redis, [key, `${key}:g`], [newGeneration(), GENERATION_TTL_MS, '', 0]),
      );
      return deleted.reduce((sum, one) => sum + one, 0);
    } finally {
      this.l1.delete(valueKeys);
      // Sent, not awaited, as after a write (see CacheService.set).
      if (announce) void this.bus.announce(valueKeys);
    }
  }

  /**
   * Encodes a value into what Redis stores, with its (jittered) lifetimes. `json`, when given, is
   * JSON text, the value being what `JSON.parse` made of it: the default codec stores it without
   * writing it again.
   */
  prepare(valueKey: string, value: unknown, options: CacheEntryOptions, json?: string): PreparedEntry {
    const isNull = value === null || value === undefined;
    const ttlOption = isNull
      ? (options.nullTtl ?? this.settings.nullTtlMs)
      : typeof options.ttl === 'function'
        ? options.ttl(value)
        : (options.ttl ?? this.settings.ttlMs);
    const jitter = options.jitter === undefined ? this.settings.jitter : toJitter('jitter', options.jitter);
    // Infinity: fresh for ever, kept until deleted (no PX).
    const ttlMs = ttlOption === Infinity ? Infinity : jittered(toPositiveMilliseconds(ttlOption, isNull ? 'nullTtl' : 'ttl'), jitter);
    const staleMs = isNull
      ? 0
      : toMilliseconds(options.staleWhileRevalidate ?? this.settings.staleWhileRevalidateMs, 'staleWhileRevalidate');
    const freshUntil = Date.now() + ttlMs;
    const encoded =
      json !== undefined && this.codec instanceof JsonCodec
        ? this.codec.encodeParsedJson(value, json, valueKey)
        : this.codec.encode(value, valueKey);
    return { payload: packEntry(freshUntil, encoded), pxMs: ttlMs + staleMs, freshUntil, encoded };
  }
}

/** A TTL spread by up to ± `jitter` of itself. */
function jittered(ttlMs: number, jitter: number): number {
  const spread = ttlMs * jitter;
  return Math.max(1, Math.round(ttlMs - spread + Math.random() * 2 * spread));
}

/** How long Redis keeps an entry, as the scripts take it: 0 for an entry that never expires. */
export function pxArgument(pxMs: number): number {
  return Number.isFinite(pxMs) ? pxMs : 0;
}
