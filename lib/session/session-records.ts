import type { Logger } from '@nestjs/common';
import { JsonCodec, type RedisCodec } from '../core/codec.js';
import type { RedisKeys } from '../core/keys.js';
import type { CountedMetric } from '../core/metrics.js';
import { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';
import type { RedisScript, ScriptArgument } from '../core/redis-script.js';
import { assertWellFormed } from '../core/validation.js';
import type { PubSubService } from '../pubsub/pubsub.service.js';
import { isKeptInSlot, slotOf } from './session-ids.js';
import { DATA, parseSessionHash, STORE_ORIGIN, STORED_FIELD, type SessionData } from './session-fields.js';
import { slotTag } from './session-slots.js';
import type { SessionEvent, SessionInfo } from './session.options.js';
import type { ResolvedSessionOptions } from './session.options-validator.js';
import {
  deadlineOf,
  fixedDeadlineOf,
  META_FIELD,
  metaOfFields,
  sessionScript,
  UNPACKED_FIELDS,
  unpackMeta,
  type SessionMeta,
} from './session-meta.js';

const touchScript = sessionScript('session-touch.lua');
const destroyScript = sessionScript('session-destroy.lua');
const indexScript = sessionScript('session-index.lua');

export type SessionFields = Readonly<Record<string, string>>;

/**
 * What `SessionService` and `RedisSessionStore` share: the Redis client, keys, codec, the
 * clock learned from Redis, and the outage log. Every Redis call of the sessions goes through
 * {@link call}, so a call Redis cannot answer rejects with `RedisUnavailableError` (503), logged
 * once per outage, while any other error (WRONGTYPE, a script error) is thrown as it is.
 */
export class SessionRecords {
  private readonly outage: OutageLog;
  /** Whether the codec is the default JsonCodec, which stores plain JSON data as its JSON text. */
  private readonly codecIsJson: boolean;
  /** Redis's clock minus this host's, from the last script reply that told the time (undefined before the first). */
  private clockOffsetMs?: number;

  constructor(
    readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly pubsub: PubSubService,
    private readonly codec: RedisCodec,
    readonly settings: ResolvedSessionOptions,
    logger: Logger,
    private readonly events: CountedMetric,
  ) {
    this.outage = new OutageLog(logger, 'sessions', 'calls fail with 503');
    this.codecIsJson = codec.constructor === JsonCodec;
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
   * The live session with this handle, with its fields as stored, or null. Slides the idle
   * timeout at most once per `touchInterval` (a short script, on Redis's clock).
   */
  async read<D extends SessionData>(handle: string): Promise<SessionInfo<D> | null> {
    const key = this.sessionKey(handle);
    // Every write that moves a session's deadline sets its key's TTL to it, so Redis itself
    // expires the session on its own clock, and a plain HGETALL finds only live ones. Its reply
    // as Redis sends it (a flat list), decoded in one pass.
    const fields = await this.call(this.redis.call('HGETALL', key) as Promise<string[]>);
    const parsed = parseSessionHash<D>(handle, fields, (raw) => this.codec.decode(raw, key));
    if (parsed === null) return null;
    const { info, meta } = parsed;
    const slid = await this.slide(key, meta);
    if (slid === null) return null;
    if (slid !== undefined) {
      info.lastSeenAt = slid;
      info.expiresAt = Math.min(slid + meta.idleTtlMs, fixedDeadlineOf(meta));
    }
    return info;
  }

  /**
   * The data field `sess` of the live session of `RedisSessionStore` with this handle, as
   * stored, or null. One HMGET of two fields, its meta fields and `sess` (not HGETALL: each
   * element of a reply costs the client a decode). Slides the idle timeout as {@link read} does.
   */
  async readStored(handle: string): Promise<string | null> {
    const key = this.sessionKey(handle);
    const [packed, sess] = await this.call(this.redis.hmget(key, META_FIELD, STORED_FIELD));
    // A session written by 0.1 keeps its meta fields one each: a second read, until its next write packs them.
    const meta = packed !== null ? unpackMeta(packed) : metaOfFields(await this.call(this.redis.hmget(key, ...UNPACKED_FIELDS)));
    if (meta === null || meta.origin !== STORE_ORIGIN) return null;
    return (await this.slide(key, meta)) === null ? null : sess;
  }

  /**
   * Slides the idle timeout of the session under `key` when it may be due (see
   * {@link touchMayBeDue}): resolves with its new last use, null when the session is gone, or
   * undefined when nothing was due.
   */
  private async slide(key: string, meta: SessionMeta): Promise<number | null | undefined> {
    if (!this.touchMayBeDue(meta.lastSeenAt, deadlineOf(meta), meta.idleTtlMs)) return undefined;
    // The script decides on Redis's clock, and tells it.
    const reply = await this.run<number>(touchScript, [key], [this.settings.touchIntervalMs]);
    if (reply === 0) return null;
    this.learnClock(Math.abs(reply));
    return reply > 0 ? reply : undefined;
  }

  /**
   * Whether a read should ask Redis to slide the idle timeout: when it is due by Redis's clock as
   * this host last learned it, when the session looks past its deadline, or when this host does
   * not know Redis's clock (not yet, or a session was seen later than this host thinks it is).
   */
  private touchMayBeDue(lastSeenAt: number, expiresAt: number, idleTtlMs: number): boolean {
    if (this.clockOffsetMs === undefined) return true;
    const now = Date.now() + this.clockOffsetMs;
    return now < lastSeenAt || now >= expiresAt || now - lastSeenAt >= Math.min(this.settings.touchIntervalMs, Math.floor(idleTtlMs / 2));
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
    let key: string | undefined;
    return (
      parseSessionHash<D>(
        handle,
        Array.isArray(fields) ? (fields as readonly string[]) : Object.entries(fields as SessionFields).flat(),
        (raw) => this.codec.decode(raw, (key ??= this.sessionKey(handle))),
      )?.info ?? null
    );
  }

  /** Data fields as `d:<name>`, value pairs for a script (undefined values left out). */
  encodeData(data: SessionData): string[] {
    return Object.entries(data).flatMap(([field, value]) =>
      value === undefined ? [] : [this.fieldName(field), this.encode(value, field)],
    );
  }

  /** The hash field of a data field; its name must be well-formed Unicode (two names must not become one field). */
  fieldName(field: string): string {
    return DATA + assertWellFormed('data (a field name)', field);
  }

  /** One data field's value, as stored. */
  decodeValue<T>(raw: string, handle: string): T {
    return this.codec.decode<T>(raw, this.sessionKey(handle));
  }

  encode(value: unknown, field: string): string {
    return this.codec.encode(value, `session data "${field}"`) as string;
  }

  /**
   * One data field's value given as JSON text, as stored. The default codec stores plain JSON
   * data as that very text (and reads it back with a bare JSON.parse), so the text is stored as it
   * is; another codec encodes the data it holds.
   */
  encodeJson(json: string, field: string): string {
    return this.codecIsJson ? json : this.encode(JSON.parse(json), field);
  }

  announce(event: SessionEvent): void {
    this.events.add({ event: event.type });
    this.pubsub.publish('sessions', event).catch(() => undefined);
  }
}
