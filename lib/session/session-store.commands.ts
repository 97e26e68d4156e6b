import type { Redis } from 'ioredis';
import { masterNodes } from '../core/redis-client.js';
import type { ScriptArgument } from '../core/redis-script.js';
import { RedisUnavailableError } from '../core/store-failure.js';
import { META_FIELD, sessionScript, unpackMeta } from './session-meta.js';
import { STORE_ORIGIN, STORED_FIELD } from './session-fields.js';
import { SessionRecords } from './session-records.js';
import type { SessionSeats } from './session-seats.js';
import { resolveSeatLimit } from './session.options-validator.js';

const saveScript = sessionScript('session-store-save.lua');

/** The key under which `SessionService` hands `RedisSessionStore` its commands (not public API). */
export const STORE_COMMANDS = Symbol('redis-patterns:session-store-commands');

/** How many keys each SCAN call asks for: also the most sessions handled at once. */
const SCAN_COUNT = 200;

/** What `RedisSessionStore` saves. */
export interface StoreSave {
  /** The session as JSON text (its data is what the store returns on the next load). */
  sessionJson: string;
  userId: string | null;
  /** The cookie's expiry in ms from now (0 or less: it has expired); undefined for a cookie without one. */
  cookieExpiresInMs: number | undefined;
  /** False when the caller had loaded this session: gone since, it must stay gone. */
  mayCreate: boolean;
}

type SaveOutcome = 'updated' | 'created' | 'ended' | 'gone' | 'unseated';

/** A session of the store as a SCAN batch finds it: its handle and the fields asked for. */
interface ScannedSession {
  handle: string;
  fields: (string | null)[];
}

/**
 * The operations behind `RedisSessionStore`, on handles (the store hashes ids before they get
 * here). Its sessions are hashes like `SessionService`'s, marked with the writer `'store'`, holding the
 * middleware's session as one data field (`sess`) and the cookie's expiry as a cap.
 */
export class SessionStoreCommands {
  constructor(
    private readonly records: SessionRecords,
    private readonly seats: SessionSeats,
  ) {}

  /** The stored session, or null. A read slides the idle timeout (at most once per `touchInterval`). */
  async load(handle: string): Promise<unknown> {
    const stored = await this.records.readStored(handle);
    return stored === null ? null : this.records.decodeValue(stored, handle);
  }

  /**
   * Saves the whole session; see {@link StoreSave}. Keeps the user's index in step. Under a seat
   * limit, a save that gives the session a new user first reserves a seat for it (which may evict
   * the user's oldest sessions, or reject with `SessionLimitError`, and then nothing is saved).
   */
  async save(handle: string, { sessionJson, userId, cookieExpiresInMs, mayCreate }: StoreSave): Promise<void> {
    const user = userId ?? '';
    const limit = user ? resolveSeatLimit({}, this.records.settings, 'session') : undefined;
    const args = [cookieArgument(cookieExpiresInMs), user, this.records.data.encodeJson(sessionJson, 'sess')];
    let [outcome, previousUser, absoluteDeadline] = await this.write(handle, mayCreate, [...args, limit ? 1 : 0]);
    const seated = outcome === 'unseated' && limit !== undefined;
    if (seated) {
      await this.seats.reserve(user, handle, limit);
      [outcome, previousUser, absoluteDeadline] = await this.write(handle, mayCreate, args);
    }
    if (outcome === 'updated' || outcome === 'created') {
      if (!(await this.records.reindex(handle, previousUser, user, absoluteDeadline, seated))) await this.seats.lost(user, handle);
    } else if (seated) {
      // Nothing saved after all (ended or gone meanwhile): the seat goes.
      await this.records.index(user, undefined, [handle]);
    }
    if (outcome === 'created') this.records.announce({ type: 'created', userId, handle });
  }

  /**
   * Slides the idle timeout now and, given the `cookie`, moves the cap its expiry puts on the
   * session (`expiresInMs` undefined: a cookie without expiry; 0 or less: expired, which ends the
   * session, as a save would). Starts nothing. Like a read, it slides at most once per
   * `touchInterval` when it moves no cap.
   */
  async touch(handle: string, cookie?: { expiresInMs: number | undefined }): Promise<void> {
    // A touch that moves no cap (none given, or a cookie without expiry on a session without a
    // cap), before the slide of a session read here lately is due, would change nothing that the
    // next read or touch past the touch interval does not: not sent.
    if ((cookie === undefined || cookie.expiresInMs === undefined) && this.records.touchIsEarly(handle, cookie !== undefined)) return;
    await this.write(handle, false, cookie === undefined ? [] : [cookieArgument(cookie.expiresInMs)]);
  }

  /**
   * Runs the save script (a save, or a touch without the session's data: see the script). A
   * session it ended, for a cookie that has expired, is ended as every other: taken out of its
   * user's index and announced.
   */
  private async write(handle: string, mayCreate: boolean, args: readonly ScriptArgument[]): Promise<[SaveOutcome, string, number]> {
    const { idleTtlMs, absoluteTtlMs } = this.records.settings;
    const [outcome, previousUser, absoluteDeadline, now] = await this.records.run<[SaveOutcome, string, number, number]>(
      saveScript,
      [this.records.sessionKey(handle)],
      [mayCreate ? 1 : 0, idleTtlMs, absoluteTtlMs, ...args],
    );
    this.records.learnClock(now);
    this.records.forgetRead(handle);
    if (outcome === 'ended') await this.records.ended(previousUser, [handle]);
    return [outcome, previousUser, absoluteDeadline];
  }

  /** Ends the session (and takes it out of its user's index). */
  destroy(handle: string): Promise<boolean> {
    return this.records.destroy(handle);
  }

  /** The handles of the store's live sessions. */
  async handles(): Promise<string[]> {
    const found = new Set<string>();
    await this.scan([], async (batch) => batch.forEach(({ handle }) => found.add(handle)));
    return [...found];
  }

  /** The store's live sessions, by handle. */
  async sessions(): Promise<Record<string, unknown>> {
    const found: Record<string, unknown> = {};
    await this.scan([STORED_FIELD], async (batch) => {
      for (const { handle, fields } of batch) if (fields[0] !== null) found[handle] = this.records.decodeValue(fields[0], handle);
    });
    return found;
  }

  /** How many live sessions the store has. */
  async count(): Promise<number> {
    return (await this.handles()).length;
  }

  /** Ends every session of the store (not those of `SessionService`), taking them out of their users' indexes. Resolves with how many. */
  async clear(): Promise<number> {
    let ended = 0;
    await this.scan([], async (batch) => {
      const users = await Promise.all(batch.map(({ handle }) => this.records.delete(handle, { origin: STORE_ORIGIN })));
      // Ended a user at a time, so that each user's index is updated once per batch.
      const byUser = new Map<string, string[]>();
      batch.forEach(({ handle }, index) => {
        const userId = users[index];
        if (userId === null) return;
        ended++;
        byUser.set(userId, [...(byUser.get(userId) ?? []), handle]);
      });
      for (const [userId, handles] of byUser) await this.records.ended(userId, handles);
    });
    return ended;
  }

  /**
   * Visits the store's live sessions a SCAN batch at a time (COUNT {@link SCAN_COUNT}, never
   * KEYS), on every master of a Cluster, with the `fields` asked for. A session may be visited
   * twice (SCAN may return a key again), never skipped if it lived throughout.
   */
  private scan(fields: readonly string[], visit: (batch: ScannedSession[]) => Promise<void>): Promise<void> {
    return this.records.call(this.scanNodes(fields, visit));
  }

  private async scanNodes(fields: readonly string[], visit: (batch: ScannedSession[]) => Promise<void>): Promise<void> {
    const nodes = masterNodes(this.records.redis);
    if (nodes.length === 0) throw new RedisUnavailableError('sessions', 'disconnected');
    const match = this.records.sessionPattern();
    for (const node of nodes) {
      for await (const keys of node.scanStream({ match, count: SCAN_COUNT })) {
        const batch = await this.readBatch(node, keys as string[], fields);
        if (batch.length > 0) await visit(batch);
      }
    }
  }

  /** The store's sessions among `keys` (all on `node`), with their `fields`, in one pipeline. */
  private async readBatch(node: Redis, keys: readonly string[], fields: readonly string[]): Promise<ScannedSession[]> {
    if (keys.length === 0) return [];
    const pipeline = node.pipeline();
    // The writer is in the meta fields (`o` on its own for a session written by 0.1).
    for (const key of keys) pipeline.hmget(key, META_FIELD, 'o', ...fields);
    const replies = (await pipeline.exec()) ?? [];
    const batch: ScannedSession[] = [];
    replies.forEach(([error, reply], index) => {
      if (error) throw error;
      const [packed, unpackedOrigin, ...values] = reply as (string | null)[];
      const origin = packed === null ? unpackedOrigin : unpackMeta(packed)?.origin;
      if (origin === STORE_ORIGIN) batch.push({ handle: this.records.handleOfKey(keys[index]), fields: values });
    });
    return batch;
  }
}

/** The cookie's expiry as the save script takes it: ms from now, or '' for a cookie without one. */
function cookieArgument(expiresInMs: number | undefined): ScriptArgument {
  return expiresInMs === undefined ? '' : Math.trunc(expiresInMs);
}
