import { randomBytes } from 'node:crypto';
import { mapBounded } from '../core/bounded.js';
import { masterNodes, type RedisClient } from '../core/redis-client.js';
import { RedisScript } from '../core/redis-script.js';
import { BULK_CHUNK } from './cache.bulk-delete.js';
import { BulkRun } from './cache.bulk-run.js';
import { globToRegExp, type CacheInvalidationBus } from './cache.bus.js';
import type { CacheEpochs } from './cache.epochs.js';
import type { BulkInvalidationOptions } from './cache.errors.js';
import type { CacheKeys } from './cache.keys.js';
import type { L1Tier } from './cache.l1-tier.js';
import { scanSteps } from './cache.scan.js';
import type { CacheEntryOptions } from './cache.options.js';

const snapshotScript = RedisScript.fromFile(new URL('./cache-tag-snapshot.lua', import.meta.url));
const tagScript = RedisScript.fromFile(new URL('./cache-tag.lua', import.meta.url));

/** How many tag sets one write of many entries updates at once. */
const TAG_CONCURRENCY = 16;

/** An entry to add to its tags' sets: its value key, value (for computed tags), options and lifetime. */
export interface TaggedEntry {
  valueKey: string;
  value: unknown;
  options: CacheEntryOptions;
  pxMs: number;
}

/**
 * Invalidations of many entries at once: by tag, by pattern, and `clear`; also where entries join
 * their tags, since the tag sets are written and read here only. Each works a thousand entries at
 * a time (see {@link BulkRun}), so no command holds Redis for long, however many there are.
 *
 * A load that began before such an invalidation never stores its result after it, on any
 * instance: the invalidation moves every epoch (see `CacheEpochs`) before it deletes anything, and
 * a load stores only if its slot's epoch did not move since it missed.
 */
export class CacheInvalidation {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: CacheKeys,
    private readonly epochs: CacheEpochs,
    private readonly l1: L1Tier,
    private readonly bus: CacheInvalidationBus,
    /** The SCAN pattern of every cache entry, for an L1 clear announced to the other instances. */
    private readonly everyEntry: string,
  ) {}

  /**
   * Adds the entry to its tags' sets (cache-tag.lua): sorted sets scored by when the entry expires,
   * so each write prunes up to a thousand expired members, and each set lives as long as its
   * longest-lived member. One script per tag. Called before the entry is written, so an
   * invalidation of the tag cannot miss it. An entry without tags (most writes) costs nothing.
   */
  async tag(valueKey: string, value: unknown, options: CacheEntryOptions, pxMs: number): Promise<void> {
    if (options.tags !== undefined) await this.tagMany([{ valueKey, value, options, pxMs }]);
  }

  /** {@link tag} for many entries: one round trip per tag, whatever the number of entries, a few tags at once. */
  async tagMany(entries: readonly TaggedEntry[]): Promise<void> {
    const now = Date.now();
    const byTag = new Map<string, { members: (string | number)[]; pxMs: number }>();
    for (const { valueKey, value, options, pxMs } of entries) {
      const tags = typeof options.tags === 'function' ? options.tags(value) : options.tags;
      for (const tag of tags ?? []) {
        const tagKey = this.keys.tag(tag);
        const group = byTag.get(tagKey) ?? { members: [], pxMs: 0 };
        group.members.push(Number.isFinite(pxMs) ? now + pxMs : '+inf', valueKey);
        if (Number.isFinite(pxMs)) group.pxMs = Math.max(group.pxMs, pxMs);
        byTag.set(tagKey, group);
      }
    }
    await mapBounded([...byTag], TAG_CONCURRENCY, async ([tagKey, { members, pxMs }]) => {
      await tagScript.run(this.redis, [tagKey], [now, pxMs, ...members]);
    });
  }

  /**
   * Deletes the entries of these tag sets, in Redis and in every instance's L1. Each set is taken
   * aside first (cache-tag-snapshot.lua; entries written from then on start a new set), read a
   * thousand members at a time, and deleted only once all its entries are gone. A call that stops
   * part-way leaves its snapshot registered under the tag, and the next call finishes it.
   * Concurrent invalidations of one tag share the registered snapshots (deleting twice is
   * harmless); each resolves with the entries it deleted itself.
   * @returns how many entries were deleted.
   */
  async invalidateTags(tags: readonly string[], options: BulkInvalidationOptions = {}): Promise<number> {
    const target = `tags ${tags.map((tag) => JSON.stringify(tag)).join(', ')}`;
    const tagKeys = tags.map((tag) => this.keys.tag(tag));
    if (tagKeys.length === 0) return 0;
    const run = new BulkRun(this.redis, this.l1, this.bus, this.everyEntry, target, options);
    try {
      run.start();
      await this.epochs.bump();
      for (const tagKey of tagKeys) {
        const registry = `${tagKey}:invalidating`;
        const snapshots = await snapshotScript.run<string[]>(this.redis, [
          tagKey,
          registry,
          `${registry}:${randomBytes(9).toString('base64url')}`,
        ]);
        for (const snapshot of snapshots) {
          const read = (from: number) => {
            const chunk = this.redis.zrange(snapshot, String(from), String(from + BULK_CHUNK - 1));
            // Read ahead, awaited only after the chunk before it is deleted: if Redis fails meanwhile,
            // its rejection is not left unhandled (the await below still sees it).
            chunk.catch(() => undefined);
            return chunk;
          };
          // The next chunk is read while this one is deleted: the snapshot does not change.
          let next = read(0);
          for (let from = 0; ; from += BULK_CHUNK) {
            const members = await next;
            // Empty: done, or finished and deleted by a concurrent invalidation.
            if (members.length === 0) break;
            next = read(from + BULK_CHUNK);
            await run.delete(members);
            run.stepDone();
          }
          await this.forget(registry, snapshot);
        }
      }
      return run.deleted;
    } catch (error) {
      throw run.failure(error);
    } finally {
      await run.announce();
    }
  }

  /** Deletes a worked-through snapshot and its registration (one slot: one pipelined round trip). */
  private async forget(registry: string, snapshot: string): Promise<void> {
    const failed = (await this.redis.pipeline().unlink(snapshot).srem(registry, snapshot).exec())?.find(([error]) => error)?.[0];
    if (failed) throw failed;
  }

  /**
   * Deletes the entries whose value key matches a SCAN pattern, in Redis and in every instance's
   * L1: SCAN on every master at once, a thousand keys a step, each batch deleted as it comes.
   * `pattern` is the caller's, for the errors' messages.
   * @returns how many entries were deleted.
   */
  async deleteMatching(match: string, pattern: string, options: BulkInvalidationOptions = {}): Promise<number> {
    const run = new BulkRun(this.redis, this.l1, this.bus, this.everyEntry, `pattern ${JSON.stringify(pattern)}`, options);
    try {
      run.start();
      await this.epochs.bump();
      await Promise.all(
        masterNodes(this.redis).map(async (node) => {
          for await (const keys of scanSteps(node, match)) {
            if (keys.length > 0) await run.delete(keys, false);
            run.stepDone();
          }
        }),
      );
      return run.deleted;
    } catch (error) {
      throw run.failure(error);
    } finally {
      this.l1.deleteMatching(globToRegExp(match));
      await this.bus.publish({ pattern: match });
    }
  }
}
