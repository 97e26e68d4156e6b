import type { Logger } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import type { RedisCodec } from '../core/codec.js';
import type { RedisKeys } from '../core/keys.js';
import type { CountedMetric } from '../core/metrics.js';
import { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';
import type { RedisScript, ScriptArgument } from '../core/redis-script.js';
import type { PubSubService } from '../pubsub/pubsub.service.js';
import { isKeptInSlot, slotOf } from './session-ids.js';
import {
  DOC_FIELD,
  parseSessionHash,
  sessionInfo,
  STORE_ORIGIN,
  STORED_FIELD,
  type SessionData,
  type SessionDataDecoder,
} from './session-fields.js';
import { SessionDataCodec } from './session-doc.js';
import { slotTag } from './session-slots.js';
import type { SessionEvent, SessionInfo } from './session.options.js';
import type { ResolvedSessionOptions } from './session.options-validator.js';
import { META_FIELD, sessionScript, unpackMeta, type SessionMeta } from './session-meta.js';

const readScript = sessionScript('session-read.lua');
const readStoredScript = sessionScript('session-read-stored.lua');
const destroyScript = sessionScript('session-destroy.lua');
const indexScript = sessionScript('session-index.lua');

/** How many sessions' next slide of the idle timeout each instance remembers (see `SessionRecords.read`). */
const REMEMBERED_SLIDES = 10_000;

export type SessionFields = Readonly<Record<string, string>>;

/** What an instance remembers of a session it read (see `SessionRecords.read`). */
interface RememberedRead {
  dueAt: number;
  capped: boolean;
  doc: boolean;
}

/**
 * What `SessionService` and `RedisSessionStore` share: the Redis client, keys, codec, the
 * clock learned from Redis, and the outage log. Every Redis call of the sessions goes through
 * {@link call}, so a call Redis cannot answer rejects with `RedisUnavailableError` (503), logged
 * once per outage, while any other error (WRONGTYPE, a script error) is thrown as it is.
 */
export class SessionRecords {
  private readonly outage: OutageLog;
  /** How the sessions' data is written and read with the app's codec. */
  readonly data: SessionDataCodec;
  /** Redis's clock minus this host's, from the last script reply that told the time (undefined before the first). */
  private clockOffsetMs?: number;
  /**
   * Of each session read lately, by handle: when its idle timeout is next due to slide (Redis's
   * clock, ms), whether a cookie's expiry caps it, and whether its data is one document.
   */
  private readonly nextSlides = new LRUCache<string, RememberedRead>({ max: REMEMBERED_SLIDES });

  constructor(
    readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly pubsub: PubSubService,
    codec: RedisCodec,
    readonly settings: ResolvedSessionOptions,
    logger: Logger,
    private readonly events: CountedMetric,
  ) {
    this.outage = new OutageLog(logger, 'sessions', 'calls fail with 503');
    this.data = new SessionDataCodec(codec);
  }

  /** Awaits a Redis call: an outage rejects with `RedisUnavailableError`, anything else as it is. */
  call<T>(pending: Promise<T>): Promise<T> {
    return this.outage.guard(pending);
  }

  run<T>(script: RedisScript, keys: readonly string[], args: readonly ScriptArgument[] = []): Promise<T> {
    return this.call(script.run<T>(this.redis, keys, args));
  }

  /**
   * The key of a session: `<prefix>{s:<handle>}`, or for one kept in its user's slot (see
   * `isKeptInSlot`) `<prefix>{s:<tag>}:<handle>`, with the tag of that slot (see `slotTag`).
   */
  sessionKey(handle: string): string {
    return isKeptInSlot(handle) ? this.keys.tagged(['s', slotTag(slotOf(handle))], handle) : this.keys.tagged(['s', handle]);
  }

  /** The user's index of sessions. */
  indexKey(userId: string): string {
    return this.userKey(userId);
  }

  /** A key in the slot of the user's index, named by `parts` after its tag. */
  userKey(userId: string, ...parts: string[]): string {
    return this.keys.tagged(['su', userId], ...parts);
  }

  /** The handle in a session key (see {@link sessionKey}). */
  handleOfKey(key: string): string {
    return key.slice(this.keys.prefix.length + '{s:'.length, -'}'.length);
  }

  /** The SCAN pattern of every session key (a handle is 43 characters). */
  sessionPattern(): string {
    return `${this.keys.prefix}{s:${'?'.repeat(43)}}`;
  }

  /**
   * The live session with this handle, with its fields as stored, or null, in one round trip.
   * Slides the idle timeout at most once per `touchInterval`, on Redis's clock: when the slide may
   * be due (see {@link slideNotDue}), the read is a script that reads the session and slides it
   * in the same call; otherwise a plain read, which finds only live sessions, since every write
   * that moves a session's deadline sets its key's TTL to it: an HMGET of its meta field and data
   * document (or, for a session kept a field to each data field, an HGETALL). Its reply is
   * decoded in one pass.
   */
  async read<D extends SessionData>(handle: string): Promise<SessionInfo<D> | null> {
    const key = this.sessionKey(handle);
    const remembered = this.slideNotDue(handle);
    let fields: string[];
    if (remembered === undefined) {
      let now: number;
      [now, fields] = await this.run<[number, string[]]>(readScript, [key], [this.settings.touchIntervalMs]);
      this.learnClock(now);
    } else if (remembered.doc) {
      const [packed, doc] = await this.call(this.redis.hmget(key, META_FIELD, DOC_FIELD));
      const meta = packed === null ? null : unpackMeta(packed);
      if (meta !== null && doc !== null) return sessionInfo<D>(handle, meta, this.data.decodeDoc(doc, key));
      // Gone, or rewritten in the other layout since (then read again).
      fields = meta === null ? [] : await this.call(this.redis.call('HGETALL', key) as Promise<string[]>);
    } else {
      fields = await this.call(this.redis.call('HGETALL', key) as Promise<string[]>);
    }
    const parsed = parseSessionHash<D>(handle, fields, this.dataDecoder(key));
    this.rememberSlide(handle, parsed?.meta, parsed?.doc);
    return parsed?.info ?? null;
  }

  /**
   * The data field `sess` of the live session of `RedisSessionStore` with this handle, as
   * stored, or null, in one round trip as {@link read} reads: a plain HMGET of its meta field and
   * `sess` when the slide is not due, else a script that answers them and slides it (and packs
   * the meta fields of a session written by 0.1, which a plain read cannot find).
   */
  async readStored(handle: string): Promise<string | null> {
    const key = this.sessionKey(handle);
    let packed: string | null | undefined;
    let stored: string | null | undefined;
    if (this.slideNotDue(handle)) [packed, stored] = await this.call(this.redis.hmget(key, META_FIELD, STORED_FIELD));
    if (packed == null) {
      let now: number;
      [now, packed, stored] = await this.run<[number, string?, string?]>(readStoredScript, [key], [this.settings.touchIntervalMs]);
      this.learnClock(now);
    }
    const meta = packed === undefined ? null : unpackMeta(packed);
    this.rememberSlide(handle, meta ?? undefined, false);
    return meta?.origin === STORE_ORIGIN ? (stored ?? null) : null;
  }

  /**
   * What this instance remembers of the session, when it read it lately and, by Redis's clock as
   * it last learned it, the slide of its idle timeout is not due yet; else undefined (a read must
   * ask Redis to slide it). A slide by another instance, or any write, only makes the real time of
   * the next slide later.
   */
  private slideNotDue(handle: string): RememberedRead | undefined {
    const next = this.nextSlides.get(handle);
    return next !== undefined && this.now() < next.dueAt ? next : undefined;
  }

  /**
   * Whether a touch of the session by `RedisSessionStore` would only slide its idle timeout before
   * that is due (see {@link slideNotDue}), so need not be sent: with `uncapped`, only if the
   * session was read without a cap (a touch that keeps it so).
   */
  touchIsEarly(handle: string, uncapped: boolean): boolean {
    const next = this.slideNotDue(handle);
    return next !== undefined && !(uncapped && next.capped);
  }

  /** Forgets what the last read of the session told (after a write of it, which may have changed its cap). */
  forgetRead(handle: string): void {
    this.nextSlides.delete(handle);
  }

  /** Remembers when the idle timeout of the session read is next due to slide (forgets a session not found). */
  private rememberSlide(handle: string, meta: SessionMeta | undefined, doc = false): void {
    if (meta === undefined) this.nextSlides.delete(handle);
    else
      this.nextSlides.set(handle, {
        dueAt: meta.lastSeenAt + Math.min(this.settings.touchIntervalMs, Math.floor(meta.idleTtlMs / 2)),
        capped: meta.cap !== Infinity,
        doc,
      });
  }

  /** Redis's current time (ms), as last learned from a script's reply; this host's clock before the first. */
  now(): number {
    return Date.now() + (this.clockOffsetMs ?? 0);
  }

  learnClock(redisNow: number): void {
    this.clockOffsetMs = redisNow - Date.now();
  }

  /**
   * Ends the session with this handle when it belongs to `owner` ('' for anyone) and, with
   * `origin`, was written by that writer (see {@link ended}). Resolves with whether it ended one.
   */
  async destroy(handle: string, { owner = '', origin = '' }: { owner?: string; origin?: string } = {}): Promise<boolean> {
    const userId = await this.delete(handle, { owner, origin });
    if (userId === null) return false;
    await this.ended(userId, [handle]);
    return true;
  }

  /**
   * What follows every end of a session (destroyed, cleared, or saved or touched with a cookie
   * that has expired), once its hash is deleted: out of its user's index, and announced.
   * `handles` are sessions of one user ('' for none).
   */
  async ended(userId: string, handles: readonly string[]): Promise<void> {
    if (userId) await this.index(userId, undefined, handles);
    for (const handle of handles) this.announce({ type: 'destroyed', userId: userId || null, handle });
  }

  /** Deletes the session's hash only (see {@link destroy}): resolves with its user ('' for none), or null when none was deleted. */
  delete(handle: string, { owner = '', origin = '' }: { owner?: string; origin?: string } = {}): Promise<string | null> {
    return this.run<string | null>(destroyScript, [this.sessionKey(handle)], [owner, origin]);
  }

  /**
   * Updates the user's index (add a session with its absolute deadline, or with `seated` only
   * re-score one already there; drop others and the expired), and lists it.
   */
  index(userId: string, add?: { handle: string; deadline: number; seated?: boolean }, remove: readonly string[] = []): Promise<string[]> {
    return this.run<string[]>(
      indexScript,
      [this.indexKey(userId)],
      [add?.handle ?? '', add?.deadline ?? '', add?.seated ? 'XX' : '', ...remove],
    );
  }

  /**
   * Moves a session from one user's index to another's ('' for none) when its user changed. With
   * `seated`, the session has a seat in the new user's index (see `SessionSeats.reserve`): it is
   * re-scored there, and resolves false when it has lost the seat since (evicted).
   */
  async reindex(handle: string, from: string, to: string, absoluteDeadline: number, seated = false): Promise<boolean> {
    if (from === to) return true;
    const kept = to ? (await this.index(to, { handle, deadline: absoluteDeadline, seated })).includes(handle) : true;
    if (from) await this.index(from, undefined, [handle]);
    return kept;
  }

  /**
   * A session from its hash: fields as `hgetall` answers them, or as a flat list of names and
   * values (HGETALL's own reply). Null when it has no meta fields (an empty reply: no session).
   */
  decode<D extends SessionData>(handle: string, fields: SessionFields | readonly string[]): SessionInfo<D> | null {
    const flat = Array.isArray(fields) ? (fields as readonly string[]) : Object.entries(fields as SessionFields).flat();
    return parseSessionHash<D>(handle, flat, this.dataDecoder(this.sessionKey(handle)))?.info ?? null;
  }

  /** Decodes the data of the session at `key`: a `d:<name>` field's value, or its document. */
  private dataDecoder(key: string): SessionDataDecoder {
    return { field: (raw) => this.data.decodeField(raw, key), doc: (raw) => this.data.decodeDoc(raw, key) };
  }

  /** One data field's value, as stored. */
  decodeValue<T>(raw: string, handle: string): T {
    return this.data.decodeField<T>(raw, this.sessionKey(handle));
  }

  announce(event: SessionEvent): void {
    this.events.add({ event: event.type });
    this.pubsub.publish('sessions', event).catch(() => undefined);
  }
}
