import { hash, randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { JsonCodec, type RedisCodec } from '../core/codec.js';
import { InvalidOptionError, ValueDescription } from '../core/errors.js';
import { RedisKeys } from '../core/keys.js';
import { MaxmemoryPolicyCheck } from '../core/maxmemory-policy.check.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { RESOLVED_OPTIONS } from '../core/redis-patterns.constants.js';
import type { ResolvedRedisPatternsOptions } from '../core/redis-patterns.options.js';
import { RedisScript } from '../core/redis-script.js';
import { PubSubService } from '../pubsub/pubsub.service.js';
import type { Session, SessionEvent, SessionInfo, SessionTimeouts } from './session.options.js';
import { resolveTimeouts, type ResolvedSessionOptions } from './session.options-validator.js';

const createScript = RedisScript.fromFile(new URL('./session-create.lua', import.meta.url));
const touchScript = RedisScript.fromFile(new URL('./session-touch.lua', import.meta.url));
const updateScript = RedisScript.fromFile(new URL('./session-update.lua', import.meta.url));
const destroyScript = RedisScript.fromFile(new URL('./session-destroy.lua', import.meta.url));
const indexScript = RedisScript.fromFile(new URL('./session-index.lua', import.meta.url));
const takeScript = RedisScript.fromFile(new URL('./session-take.lua', import.meta.url));

/**
 * The ids this service accepts: 22 to 128 base64url characters (at least 128 bits). It makes
 * 43-character ones (256 bits); shorter ones come from other session middleware (express-session
 * makes 32-character ones) through `RedisSessionStore`.
 */
const SESSION_ID = /^[A-Za-z0-9_-]{22,128}$/;
/** Data fields are stored as `d:<name>` beside the session's own fields. */
const DATA = 'd:';

type Data = Record<string, unknown>;

/**
 * Server-side sessions in Redis. Ids are 256 random bits; Redis only holds a SHA-256 of each, so
 * a dump of Redis contains no live session token. A session expires at
 * min(lastSeen + idleTtl, createdAt + absoluteTtl), on Redis's clock. Each user's sessions are
 * listed by an index (a sorted set scored by expiry), so nothing ever SCANs the keyspace.
 *
 * Session events (`created`, `regenerated`, `destroyed`) are published on the `sessions` channel.
 *
 * @example
 * const session = await this.sessions.create(user.id, { role: user.role });
 * // after login: a new id, the old one dead at once
 * const fresh = await this.sessions.regenerate(session.id);
 * await this.sessions.destroyAllForUser(user.id, { except: fresh.id }); // log out everywhere else
 */
@Injectable()
export class SessionService {
  private readonly redis: RedisClient;
  private readonly settings: ResolvedSessionOptions;
  private readonly codec: RedisCodec;
  /**
   * Redis's clock minus this host's, from the last script reply that told the time (undefined
   * before the first): tells a read when the idle timeout is due to slide.
   */
  private clockOffsetMs?: number;

  constructor(
    connections: RedisConnections,
    private readonly keys: RedisKeys,
    private readonly pubsub: PubSubService,
    maxmemoryPolicy: MaxmemoryPolicyCheck,
    @Inject(RESOLVED_OPTIONS) options: ResolvedRedisPatternsOptions,
  ) {
    this.redis = connections.get();
    this.settings = options.session;
    // Session fields are text: a binary codec does not apply to them.
    this.codec = options.codec.binary ? new JsonCodec() : options.codec;
    if (options.session.configured) maxmemoryPolicy.declare('sessions', 'durable');
  }

  /**
   * Starts a session for `userId` (or an anonymous one with null).
   * @example
   * const { id } = await this.sessions.create(user.id, { cart: [] }, { idleTtl: '15m' });
   */
  async create<D extends Data = Data>(userId: string | null, data: D = {} as D, timeouts: SessionTimeouts = {}): Promise<Session<D>> {
    return this.createWithId(randomBytes(32).toString('base64url'), userId, data, timeouts);
  }

  /**
   * Writes the session's data under an id made elsewhere (by session middleware): replaces the
   * data of a live session, or starts one. Used by `RedisSessionStore`.
   */
  async save<D extends Data = Data>(id: string, userId: string | null, data: D, timeouts: SessionTimeouts = {}, { create = true }: { create?: boolean } = {}): Promise<void> {
    if (!isSessionId(id)) throw new InvalidOptionError('id', 'a session id of 22 to 128 base64url characters', new ValueDescription('a malformed id (not shown)'));
    const handle = handleOf(id);
    const updated = await this.write(handle, data, userId ?? '');
    if (!updated) {
      // Not when the caller had read it from here: it was destroyed or expired since, and stays so.
      if (create) await this.createWithId(id, userId, data, timeouts);
      return;
    }
    // A session that gets its user later (middleware saves an anonymous one, then the login).
    const [, previousUser, deadline] = updated;
    if (userId === null || previousUser === userId) return;
    await this.index(userId, { handle, deadline });
    if (previousUser) await this.index(previousUser, undefined, [handle]);
  }

  private async createWithId<D extends Data>(id: string, userId: string | null, data: D, timeouts: SessionTimeouts): Promise<Session<D>> {
    if (userId !== null && (typeof userId !== 'string' || userId.length === 0)) throw new InvalidOptionError('userId', 'a non-empty string, or null', userId);
    const { idleTtlMs, absoluteTtlMs } = resolveTimeouts(timeouts, this.settings, 'timeouts');
    const handle = handleOf(id);
    const createdAt = await createScript.run<number>(this.redis, [this.sessionKey(handle)], [idleTtlMs, absoluteTtlMs, userId ?? '', ...this.encodeData(data)]);
    this.learnClock(createdAt);
    const expiresAt = createdAt + Math.min(idleTtlMs, absoluteTtlMs);
    // The session first, then the index: a listed session can always be read.
    if (userId !== null) await this.index(userId, { handle, deadline: createdAt + absoluteTtlMs });
    this.announce({ type: 'created', userId, handle });
    return { id, handle, userId, data, createdAt, lastSeenAt: createdAt, expiresAt };
  }

  /**
   * The live session with this id, or null (unknown, expired, or not an id this service made:
   * such an id is rejected without asking Redis). Slides the idle timeout, at most once per
   * `touchInterval`.
   */
  async get<D extends Data = Data>(id: string): Promise<Session<D> | null> {
    if (!isSessionId(id)) return null;
    const handle = handleOf(id);
    const key = this.sessionKey(handle);
    // Every write that moves a session's deadline sets its key's TTL to it, so Redis itself
    // expires the session on its own clock, and a plain HGETALL finds only live ones.
    const fields = await this.redis.hgetall(key);
    if (fields.c === undefined) return null;
    const session = this.decode<D>(handle, fields);
    const idleTtlMs = Number(fields.i);
    if (!this.touchMayBeDue(session, idleTtlMs)) return { id, ...session };
    // The script decides on Redis's clock, and tells it.
    const reply = await touchScript.run<number>(this.redis, [key], [this.settings.touchIntervalMs]);
    if (reply === 0) return null;
    this.learnClock(Math.abs(reply));
    if (reply < 0) return { id, ...session };
    return { id, ...session, lastSeenAt: reply, expiresAt: Math.min(reply + idleTtlMs, session.createdAt + Number(fields.a)) };
  }

  /**
   * Whether a read should ask Redis to slide the idle timeout: when it is due by Redis's clock as
   * this host last learned it, when the session looks past its deadline, or when this host does
   * not know Redis's clock (not yet, or a session was seen later than this host thinks it is).
   */
  private touchMayBeDue(session: SessionInfo, idleTtlMs: number): boolean {
    if (this.clockOffsetMs === undefined) return true;
    const now = Date.now() + this.clockOffsetMs;
    return now < session.lastSeenAt || now >= session.expiresAt || now - session.lastSeenAt >= Math.min(this.settings.touchIntervalMs, Math.floor(idleTtlMs / 2));
  }

  /** Redis's current time (ms), as this instance last learned it from a script's reply; this host's clock before the first. */
  now(): number {
    return Date.now() + (this.clockOffsetMs ?? 0);
  }

  private learnClock(redisNow: number): void {
    this.clockOffsetMs = redisNow - Date.now();
  }

  /**
   * Sets some data fields (undefined deletes one), leaving the others: concurrent updates of
   * different fields all survive. Resolves false when the session is gone.
   * @example
   * await this.sessions.update(id, { theme: 'dark' });
   */
  async update(id: string, patch: Data): Promise<boolean> {
    if (!isSessionId(id)) return false;
    return (await this.write(handleOf(id), patch, '')) !== undefined;
  }

  /** Sets (undefined: deletes) data fields of a live session, and its user unless ''; undefined when it is gone. */
  private async write(handle: string, patch: Data, userId: string): Promise<[number, string, number] | undefined> {
    const set: string[] = [];
    const removed: string[] = [];
    for (const [field, value] of Object.entries(patch)) {
      if (value === undefined) removed.push(DATA + field);
      else set.push(DATA + field, this.encode(value, field));
    }
    const reply = await updateScript.run<0 | [number, string, number]>(this.redis, [this.sessionKey(handle)], [userId, ...set, '', ...removed]);
    return reply === 0 ? undefined : reply;
  }

  /**
   * The same session under a new id (same data and deadlines; the same user, or `userId` to log
   * an anonymous session in); the old id stops working before this resolves. Call it when
   * privileges change, such as at login.
   * @returns the session under its new id, or null when the old one was gone.
   */
  async regenerate<D extends Data = Data>(id: string, { userId }: { userId?: string } = {}): Promise<Session<D> | null> {
    if (!isSessionId(id)) return null;
    if (userId !== undefined && (typeof userId !== 'string' || userId.length === 0)) throw new InvalidOptionError('userId', 'a non-empty string', userId);
    const oldHandle = handleOf(id);
    // Taken away in one step: a concurrent update, destroy or regenerate of the old id finds nothing.
    const taken = await takeScript.run<[number, string[]] | null>(this.redis, [this.sessionKey(oldHandle)]);
    if (!taken) return null;
    const [now, fields] = taken;
    this.learnClock(now);
    const previousUser = fieldValue(fields, 'u') || null;
    if (userId !== undefined) setField(fields, 'u', userId);
    const info = this.decode<D>(oldHandle, fields);
    const newId = randomBytes(32).toString('base64url');
    const handle = handleOf(newId);
    const newKey = this.sessionKey(handle);
    await this.redis.multi().hset(newKey, ...fields).pexpire(newKey, Math.max(1, info.expiresAt - now)).exec();
    if (info.userId !== null) await this.index(info.userId, { handle, deadline: info.createdAt + Number(fieldValue(fields, 'a')) }, [oldHandle]);
    if (previousUser !== null && previousUser !== info.userId) await this.index(previousUser, undefined, [oldHandle]);
    this.announce({ type: 'regenerated', userId: info.userId, handle, previousHandle: oldHandle });
    return { ...info, id: newId, handle };
  }

  /** Ends a session. Resolves with whether there was one. */
  async destroy(id: string): Promise<boolean> {
    if (!isSessionId(id)) return false;
    return this.destroyKey(handleOf(id));
  }

  /** The user's live sessions (without their ids), repairing index entries whose session is gone. */
  async listForUser<D extends Data = Data>(userId: string): Promise<SessionInfo<D>[]> {
    const handles = await this.index(userId);
    const sessions = await Promise.all(handles.map((handle) => this.redis.hgetall(this.sessionKey(handle))));
    const dead = handles.filter((_, index) => Object.keys(sessions[index]).length === 0);
    if (dead.length > 0) await this.index(userId, undefined, dead);
    return handles.flatMap((handle, index) => (Object.keys(sessions[index]).length === 0 ? [] : [this.decode<D>(handle, sessions[index])]));
  }

  /**
   * Ends every session of the user, except `except` (an id: the caller's own, for "log out
   * everywhere else"). Resolves with how many were ended.
   */
  async destroyAllForUser(userId: string, { except }: { except?: string } = {}): Promise<number> {
    if (except !== undefined && !isSessionId(except)) throw new InvalidOptionError('except', 'a session id', new ValueDescription('a malformed id (not shown)'));
    const keep = except === undefined ? undefined : handleOf(except);
    const handles = (await this.index(userId)).filter((handle) => handle !== keep);
    const ended = await Promise.all(handles.map((handle) => this.destroyHandle(userId, handle)));
    return ended.filter(Boolean).length;
  }

  /** Ends the session with this handle (as listed by `listForUser`), if it belongs to `userId`. */
  async destroyHandle(userId: string, handle: string): Promise<boolean> {
    const ended = await this.destroyKey(handle, userId);
    await this.index(userId, undefined, [handle]);
    return ended;
  }

  private async destroyKey(handle: string, owner = ''): Promise<boolean> {
    const userId = await destroyScript.run<string | null>(this.redis, [this.sessionKey(handle)], [owner]);
    if (userId === null) return false;
    if (userId && !owner) await this.index(userId, undefined, [handle]);
    this.announce({ type: 'destroyed', userId: userId || null, handle });
    return true;
  }

  /** Updates the user's index (add a session with its absolute deadline, drop others and the expired), and lists it. */
  private index(userId: string, add?: { handle: string; deadline: number }, remove: readonly string[] = []): Promise<string[]> {
    return indexScript.run<string[]>(this.redis, [this.keys.tagged(['su', userId])], [add?.handle ?? '', add?.deadline ?? '', ...remove]);
  }

  /** A session from its hash: fields as HGETALL answers them, or as a flat list of names and values. */
  private decode<D extends Data>(handle: string, fields: Readonly<Record<string, string>> | readonly string[]): SessionInfo<D> {
    const raw = Array.isArray(fields) ? toRecord(fields) : (fields as Readonly<Record<string, string>>);
    const data: Data = {};
    let key: string | undefined;
    for (const field in raw) {
      if (!field.startsWith(DATA)) continue;
      const name = field.slice(DATA.length);
      const value = this.codec.decode(raw[field], (key ??= this.sessionKey(handle)));
      // A field named __proto__ is a field, not the object's prototype.
      if (name === '__proto__') Object.defineProperty(data, name, { value, enumerable: true, writable: true, configurable: true });
      else data[name] = value;
    }
    const createdAt = Number(raw.c);
    const lastSeenAt = Number(raw.l);
    return { handle, userId: raw.u ? raw.u : null, data: data as D, createdAt, lastSeenAt, expiresAt: Math.min(lastSeenAt + Number(raw.i), createdAt + Number(raw.a)) };
  }

  private encodeData(data: Data): string[] {
    if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new InvalidOptionError('data', 'an object of fields', data);
    return Object.entries(data).flatMap(([field, value]) => (value === undefined ? [] : [DATA + field, this.encode(value, field)]));
  }

  private encode(value: unknown, field: string): string {
    return this.codec.encode(value, `session data "${field}"`) as string;
  }

  private sessionKey(handle: string): string {
    return this.keys.tagged(['s', handle]);
  }

  private announce(event: SessionEvent): void {
    this.pubsub.publish('sessions', event).catch(() => undefined);
  }
}

/** Whether `id` has the form of an id this service makes (checked before any Redis call). */
export function isSessionId(id: unknown): id is string {
  return typeof id === 'string' && SESSION_ID.test(id);
}

function toRecord(fields: readonly string[]): Record<string, string> {
  const record: Record<string, string> = Object.create(null);
  for (let i = 0; i < fields.length; i += 2) record[fields[i]] = fields[i + 1];
  return record;
}

function setField(fields: string[], name: string, value: string): void {
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === name) {
      fields[i + 1] = value;
      return;
    }
  }
  fields.push(name, value);
}

function fieldValue(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

/** What Redis stores instead of the id: its SHA-256, base64url. */
function handleOf(id: string): string {
  return hash('sha256', id, 'base64url');
}
