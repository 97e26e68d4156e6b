import { Inject, Injectable, Logger } from '@nestjs/common';
import { JsonCodec } from '../core/codec.js';
import { InvalidOptionError, ValueDescription } from '../core/errors.js';
import { RedisKeys } from '../core/keys.js';
import { CountedMetric, RedisMetrics, type MetricsHistogram } from '../core/metrics.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { CORE_OPTIONS } from '../core/core.constants.js';
import type { ResolvedCoreOptions } from '../core/core.options.js';
import { toTextArgument } from '../core/validation.js';
import { mapBounded } from '../core/bounded.js';
import { PubSubService } from '../pubsub/pubsub.service.js';
import { handleOf, isSessionId, newSessionId } from './session-ids.js';
import { META_FIELD, packMeta, sessionScript, unpackMeta } from './session-meta.js';
import type { SessionData } from './session-fields.js';
import { SessionRecords } from './session-records.js';
import { SessionSeats } from './session-seats.js';
import { SessionLimitError } from './session.errors.js';
import { SessionStoreCommands, STORE_COMMANDS } from './session-store.commands.js';
import {
  SESSION_OPTIONS,
  type Session,
  type SessionCreateOptions,
  type SessionInfo,
  type SessionRegenerateOptions,
} from './session.options.js';
import { resolveSeatLimit, resolveTimeouts, type ResolvedSessionOptions } from './session.options-validator.js';

/** Bucket bounds of `sessions_per_user`. */
const SESSIONS_PER_USER_BUCKETS = [1, 2, 3, 5, 10, 20, 50, 100];

/** How many sessions of one user are read or ended at once. */
const BULK_CONCURRENCY = 16;

export { isSessionId } from './session-ids.js';

const createScript = sessionScript('session-create.lua');
const updateScript = sessionScript('session-update.lua', 'session-doc.lua');
const takeScript = sessionScript('session-take.lua');

/**
 * Server-side sessions in Redis. Ids are 256 random bits; Redis only holds a SHA-256 of each, so
 * a dump of Redis contains no live session token. A session expires at
 * min(lastSeen + idleTtl, createdAt + absoluteTtl), on Redis's clock. Each user's sessions are
 * listed by an index (a sorted set scored by expiry), so nothing ever SCANs the keyspace.
 *
 * Session events (`created`, `regenerated`, `destroyed`) are published on the `sessions` channel.
 * A call Redis cannot answer rejects with `RedisUnavailableError` (503), logged once per outage.
 *
 * @example
 * const session = await this.sessions.create(user.id, { role: user.role });
 * // after login: a new id, the old one dead at once
 * const fresh = await this.sessions.regenerate(session.id);
 * await this.sessions.destroyAllForUser(user.id, { except: fresh.id }); // log out everywhere else
 */
@Injectable()
export class SessionService {
  private readonly records: SessionRecords;
  private readonly seats: SessionSeats;
  private readonly perUser: MetricsHistogram;
  /** What `RedisSessionStore` runs on; not public API. */
  readonly [STORE_COMMANDS]: SessionStoreCommands;

  constructor(
    connections: RedisConnections,
    keys: RedisKeys,
    pubsub: PubSubService,
    @Inject(CORE_OPTIONS) core: ResolvedCoreOptions,
    @Inject(SESSION_OPTIONS) settings: ResolvedSessionOptions,
    metrics: RedisMetrics,
  ) {
    // Session fields are text: a binary codec does not apply to them.
    const codec = core.codec.binary ? new JsonCodec() : core.codec;
    const events = new CountedMetric(metrics, {
      name: 'session_events_total',
      help: 'Sessions created, regenerated and destroyed (by this instance)',
      labelNames: ['event'],
    });
    this.records = new SessionRecords(connections.get(), keys, pubsub, codec, settings, new Logger('RedisPatterns:Session'), events);
    // A distribution, not a label per user: user ids are unbounded.
    this.perUser = metrics.histogram({
      name: 'sessions_per_user',
      help: "A user's live sessions, counted as a session of theirs starts",
      labelNames: [],
      buckets: SESSIONS_PER_USER_BUCKETS,
    });
    this.seats = new SessionSeats(this.records);
    this[STORE_COMMANDS] = new SessionStoreCommands(this.records, this.seats);
  }

  /**
   * Starts a session for `userId` (or an anonymous one with null). With a seat limit (the
   * module's `maxSessionsPerUser`, or this call's), a session with a user takes a seat: at the
   * limit, the user's oldest sessions are evicted, or this rejects with `SessionLimitError` (409),
   * as `onLimit` says.
   * @example
   * const { id } = await this.sessions.create(user.id, { cart: [] }, { idleTtl: '15m' });
   * await this.sessions.create(user.id, {}, { maxSessionsPerUser: user.plan === 'family' ? 5 : 2 });
   */
  async create<D extends SessionData = SessionData>(
    userId: string | null,
    data: D = {} as D,
    options: SessionCreateOptions = {},
  ): Promise<Session<D>> {
    if (userId !== null) toTextArgument('userId', userId);
    if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new InvalidOptionError('data', 'an object of fields', data);
    const { idleTtlMs, absoluteTtlMs } = resolveTimeouts(options, this.records.settings, 'options');
    const limit = resolveSeatLimit(options, this.records.settings, 'options');
    const fields = this.records.data.encodeData(data);
    const seated = userId !== null && limit !== undefined;
    // With a seat, kept in the slot of the user's index, and written with its seat in one script.
    const id = newSessionId(seated ? this.seats.slotOf(userId) : undefined);
    const handle = handleOf(id);
    let createdAt: number;
    if (seated) {
      const taken = await this.seats.take(userId, handle, limit, { kind: 'create', idleTtlMs, absoluteTtlMs, fields });
      createdAt = taken.now;
      if (this.perUser.active) this.perUser.observe({}, taken.sessions);
    } else {
      createdAt = await this.records.run<number>(
        createScript,
        [this.records.sessionKey(handle)],
        [idleTtlMs, absoluteTtlMs, userId ?? '', ...fields],
      );
      this.records.learnClock(createdAt);
      // The session first, then the index: a listed session can always be read.
      if (userId !== null) {
        const live = await this.records.index(userId, { handle, deadline: createdAt + absoluteTtlMs });
        if (this.perUser.active) this.perUser.observe({}, live.length);
      }
    }
    this.records.announce({ type: 'created', userId, handle });
    return { id, handle, userId, data, createdAt, lastSeenAt: createdAt, expiresAt: createdAt + Math.min(idleTtlMs, absoluteTtlMs) };
  }

  /**
   * The live session with this id, or null (unknown, expired, or not an id this service makes:
   * such an id is answered without asking Redis). Slides the idle timeout, at most once per
   * `touchInterval`.
   * @example
   * const session = await this.sessions.get(id);
   * if (!session) throw new UnauthorizedException();
   */
  async get<D extends SessionData = SessionData>(id: string): Promise<Session<D> | null> {
    if (!isSessionId(id)) return null;
    const found = await this.records.read<D>(handleOf(id));
    return found === null ? null : { id, ...found };
  }

  /**
   * Redis's current time (ms), as this instance last learned it from a script's reply; this
   * host's clock before the first.
   * @example
   * const secondsLeft = Math.floor((session.expiresAt - this.sessions.now()) / 1000);
   */
  now(): number {
    return this.records.now();
  }

  /**
   * Sets some data fields (undefined deletes one), leaving the others: concurrent updates of
   * different fields all survive. Resolves false when the session is gone.
   * @example
   * await this.sessions.update(id, { theme: 'dark' });
   */
  async update(id: string, patch: SessionData): Promise<boolean> {
    if (!isSessionId(id)) return false;
    const set: string[] = [];
    const removed: string[] = [];
    for (const [field, value] of Object.entries(patch)) {
      if (value === undefined) removed.push(this.records.data.fieldName(field));
      else set.push(this.records.data.fieldName(field), this.records.data.encode(value, field));
    }
    const reply = await this.records.run<0 | [number, string, number]>(
      updateScript,
      [this.records.sessionKey(handleOf(id))],
      ['', this.records.data.name, ...set, '', ...removed],
    );
    return reply !== 0;
  }

  /**
   * The same session under a new id (same data and deadlines; the same user, or `userId` to log
   * an anonymous session in); the old id stops working before this resolves. Call it when
   * privileges change, such as at login. With a seat limit (see {@link create}), a session given
   * to another user takes a seat; refused, it rejects with `SessionLimitError` and the old id
   * works on.
   * @returns the session under its new id, or null when the old one was gone.
   * @example
   * const loggedIn = await this.sessions.regenerate(anonymous.id, { userId: user.id });
   */
  async regenerate<D extends SessionData = SessionData>(id: string, options: SessionRegenerateOptions = {}): Promise<Session<D> | null> {
    const { userId } = options;
    if (userId !== undefined) toTextArgument('userId', userId);
    const limit = resolveSeatLimit(options, this.records.settings, 'options');
    if (!isSessionId(id)) return null;
    const oldHandle = handleOf(id);
    // Taken away in one step: a concurrent update, destroy or regenerate of the old id finds nothing.
    const taken = await this.records.run<[number, string, string[]] | null>(takeScript, [this.records.sessionKey(oldHandle)]);
    if (!taken) return null;
    const [now, packed, dataFields] = taken;
    this.records.learnClock(now);
    // The script packed them: a session it took is well-formed.
    const meta = unpackMeta(packed)!;
    const previousUser = meta.userId;
    if (userId !== undefined) meta.userId = userId;
    const fields = [META_FIELD, packMeta(meta), ...dataFields];
    const info = this.records.decode<D>(oldHandle, fields)!;
    const seated = meta.userId !== '' && limit !== undefined;
    const newId = newSessionId(seated ? this.seats.slotOf(meta.userId) : undefined);
    const handle = handleOf(newId);
    if (seated) {
      const moved = { kind: 'move', packedMeta: fields[1], fields: dataFields } as const;
      // The same user's session keeps its seat (the old handle's).
      await this.seats
        .take(meta.userId, handle, limit, moved, previousUser === meta.userId ? oldHandle : '')
        .catch(async (error: unknown) => {
          // Refused: the session is put back under its old id (a destroy of that id in the meantime found nothing to end).
          if (error instanceof SessionLimitError) await this.write(oldHandle, [META_FIELD, packed, ...dataFields], info.expiresAt - now);
          throw error;
        });
    } else {
      await this.write(handle, fields, info.expiresAt - now);
      const absoluteDeadline = meta.createdAt + meta.absoluteTtlMs;
      if (info.userId !== null) await this.records.index(info.userId, { handle, deadline: absoluteDeadline }, [oldHandle]);
    }
    if (previousUser && previousUser !== info.userId) await this.records.index(previousUser, undefined, [oldHandle]);
    this.records.announce({ type: 'regenerated', userId: info.userId, handle, previousHandle: oldHandle });
    return { ...info, id: newId, handle };
  }

  /** Writes a session's fields, expiring in `ttlMs` (at least 1). */
  private async write(handle: string, fields: readonly string[], ttlMs: number): Promise<void> {
    const key = this.records.sessionKey(handle);
    await this.records.call(
      this.records.redis
        .multi()
        .hset(key, ...fields)
        .pexpire(key, Math.max(1, ttlMs))
        .exec(),
    );
  }

  /**
   * Ends a session. Resolves with whether there was one.
   * @example
   * await this.sessions.destroy(session.id); // log out
   */
  async destroy(id: string): Promise<boolean> {
    if (!isSessionId(id)) return false;
    return this.records.destroy(handleOf(id));
  }

  /**
   * The user's live sessions (without their ids), repairing index entries whose session is gone.
   * @example
   * const devices = (await this.sessions.listForUser(user.id)).map((session) => session.data.userAgent);
   */
  async listForUser<D extends SessionData = SessionData>(userId: string): Promise<SessionInfo<D>[]> {
    const handles = await this.records.index(toTextArgument('userId', userId));
    const sessions = await this.records.call(
      mapBounded(handles, BULK_CONCURRENCY, (handle) => this.records.redis.hgetall(this.records.sessionKey(handle))),
    );
    const decoded = handles.map((handle, index) => this.records.decode<D>(handle, sessions[index]));
    const dead = handles.filter((_, index) => decoded[index] === null);
    if (dead.length > 0) await this.records.index(userId, undefined, dead);
    return decoded.filter((session) => session !== null);
  }

  /**
   * Ends every session of the user, except `except` (an id: the caller's own, for "log out
   * everywhere else"). Resolves with how many were ended.
   * @example
   * await this.sessions.destroyAllForUser(user.id, { except: session.id });
   */
  async destroyAllForUser(userId: string, { except }: { except?: string } = {}): Promise<number> {
    toTextArgument('userId', userId);
    if (except !== undefined && !isSessionId(except))
      throw new InvalidOptionError('except', 'a session id', new ValueDescription('a malformed id (not shown)'));
    const keep = except === undefined ? undefined : handleOf(except);
    const handles = (await this.records.index(userId)).filter((handle) => handle !== keep);
    const ended = await mapBounded(handles, BULK_CONCURRENCY, (handle) => this.destroyHandle(userId, handle));
    return ended.filter(Boolean).length;
  }

  /**
   * Ends the session with this handle (as `listForUser` lists it), if it belongs to `userId`.
   * A string that is not a handle ends nothing, without asking Redis.
   * @example
   * await this.sessions.destroyHandle(user.id, body.handle); // "log out that device"
   */
  async destroyHandle(userId: string, handle: string): Promise<boolean> {
    toTextArgument('userId', userId);
    if (!isSessionId(handle)) return false;
    const ended = await this.records.destroy(handle, { owner: userId });
    // An index entry whose session is gone, or is another user's, goes too.
    if (!ended) await this.records.index(userId, undefined, [handle]);
    return ended;
  }
}
