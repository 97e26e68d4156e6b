import calculateSlot from 'cluster-key-slot';
import { mapBounded } from '../core/bounded.js';
import type { ScriptArgument } from '../core/redis-script.js';
import { isKeptInSlot, slotOf } from './session-ids.js';
import { META_FIELD, sessionScript, unpackMeta } from './session-meta.js';
import type { SessionRecords } from './session-records.js';
import { SessionLimitError } from './session.errors.js';
import type { SeatLimit } from './session.options-validator.js';

const seatScript = sessionScript('session-seat.lua');

/**
 * How long a seat reserved for a session kept in another slot counts without being saved: the
 * save follows at once, so this only matters when the saving process dies in between.
 */
const RESERVATION_MS = 30_000;

/** How many sessions kept in other slots are checked at once. */
const CHECK_CONCURRENCY = 16;

/**
 * After this many rounds of checks, an eviction may take members the caller did not check (added
 * by logins racing with this one): those kept in the user's slot are then deleted by the caller,
 * after the script, not with their seat.
 */
const RELEASE_AFTER_ROUNDS = 8;

/**
 * Rounds of checks a decision may take before it is refused: each round but the first prunes or
 * evicts members, so this is only reached while other logins keep filling the user's seats.
 */
const MAX_ROUNDS = 32;

/** What takes a seat: a session written by the seat script itself (in its user's slot), or one kept in another slot. */
export type SeatedSession =
  | { kind: 'create'; idleTtlMs: number; absoluteTtlMs: number; fields: readonly string[] }
  | { kind: 'move'; packedMeta: string; fields: readonly string[] }
  | { kind: 'reserve' };

type SeatReply = [
  outcome: 'admitted' | 'rejected' | 'check',
  now: number,
  deleted: string[],
  released: string[],
  detail: number | string[],
];

/** The members of a user's index checked before a decision: those kept in its slot (by key), and the others, ended or live. */
interface Checks {
  inSlot: { handle: string; key: string }[];
  ended: string[];
  live: string[];
}

/**
 * Seat limits (`maxSessionsPerUser`): each session with a user holds a seat in the user's index,
 * given in one script that prunes ended members, counts the live ones and refuses or evicts (see
 * session-seat.lua). Sessions `SessionService` makes under a limit are kept in the slot of their
 * user's index (their ids say which slot), so the script checks and deletes them itself, on a
 * Cluster as on one server. Sessions kept elsewhere (`RedisSessionStore`'s, whose ids the session
 * middleware makes, and sessions made without a limit) are checked here before a decision that
 * depends on them, and deleted here once evicted.
 */
export class SessionSeats {
  constructor(private readonly records: SessionRecords) {}

  /** The slot sessions of the user are kept in under a limit: that of the user's index. */
  slotOf(userId: string): number {
    return calculateSlot(this.records.indexKey(userId));
  }

  /**
   * Gives the session `handle` a seat among the user's sessions, writing it when it is kept in
   * the user's slot; `replaces` is a handle whose seat it takes over (a regenerated session's old
   * one). Evicts the oldest when `onLimit` is `'evict-oldest'`, announcing them; rejects with
   * `SessionLimitError` when it is `'reject'`. Resolves with Redis's time and the user's sessions.
   */
  async take(
    userId: string,
    handle: string,
    limit: SeatLimit,
    session: SeatedSession,
    replaces = '',
  ): Promise<{ now: number; sessions: number }> {
    let checks: Checks | undefined;
    for (let round = 0; ; round++) {
      const keys = [this.records.indexKey(userId), this.reservationsKey(userId), ...(checks?.inSlot.map(({ key }) => key) ?? [])];
      if (session.kind !== 'reserve') keys.push(this.records.sessionKey(handle));
      const [outcome, now, deleted, released, detail] = await this.records.run<SeatReply>(seatScript, keys, [
        limit.maxSessionsPerUser,
        limit.onLimit,
        handle,
        replaces,
        checks ? (round > RELEASE_AFTER_ROUNDS ? 2 : 1) : 0,
        ...countedList(checks?.inSlot.map((checked) => checked.handle) ?? []),
        ...countedList(checks?.ended ?? []),
        ...countedList(checks?.live ?? []),
        ...this.writeArguments(userId, session),
      ]);
      this.records.learnClock(now);
      await this.evicted(userId, deleted, released);
      if (outcome === 'admitted') return { now, sessions: detail as number };
      if (outcome === 'rejected' || round === MAX_ROUNDS) throw new SessionLimitError(limit.maxSessionsPerUser, userId);
      checks = await this.check(userId, detail as string[]);
    }
  }

  /**
   * Reserves a seat for a session kept in another slot (of `RedisSessionStore`), before the save
   * that gives it its user: see {@link take}. The save then re-scores it with `seated` (see
   * `SessionRecords.reindex`); if it lost the seat meanwhile, {@link lost} ends it.
   */
  async reserve(userId: string, handle: string, limit: SeatLimit): Promise<void> {
    await this.take(userId, handle, limit, { kind: 'reserve' });
  }

  /** Ends a session saved for its user after it was evicted from the seat it had reserved. */
  async lost(userId: string, handle: string): Promise<void> {
    await this.evicted(userId, [], [handle]);
  }

  private reservationsKey(userId: string): string {
    return this.records.userKey(userId, 'r');
  }

  private writeArguments(userId: string, session: SeatedSession): ScriptArgument[] {
    switch (session.kind) {
      case 'create':
        return ['create', session.idleTtlMs, session.absoluteTtlMs, userId, ...session.fields];
      case 'move':
        return ['move', session.packedMeta, ...session.fields];
      case 'reserve':
        return ['reserve', this.records.settings.absoluteTtlMs, RESERVATION_MS];
    }
  }

  /**
   * Checks members of the user's index: those kept in its slot are named by key, for the script
   * to check; the others are read here (a bounded number at a time), and count as ended when they
   * are gone or belong to someone else.
   */
  private async check(userId: string, members: readonly string[]): Promise<Checks> {
    const slot = this.slotOf(userId);
    const inSlot = members.filter((member) => isKeptInSlot(member) && slotOf(member) === slot);
    const elsewhere = members.filter((member) => !inSlot.includes(member));
    const owners = await mapBounded(elsewhere, CHECK_CONCURRENCY, (handle) => this.ownerOf(handle));
    return {
      inSlot: inSlot.map((handle) => ({ handle, key: this.records.sessionKey(handle) })),
      ended: elsewhere.filter((_, index) => owners[index] !== userId),
      live: elsewhere.filter((_, index) => owners[index] === userId),
    };
  }

  /** The user of the session with this handle ('' for none), or null when there is no session. */
  private async ownerOf(handle: string): Promise<string | null> {
    const [packed, unpackedUser] = await this.records.call(this.records.redis.hmget(this.records.sessionKey(handle), META_FIELD, 'u'));
    // A session written by 0.1 keeps its user in a field of its own.
    return packed === null ? unpackedUser : (unpackMeta(packed)?.userId ?? null);
  }

  /**
   * Announces the sessions evicted: those the script deleted, and those kept elsewhere that it
   * released, once deleted here (if they still belong to the user).
   */
  private async evicted(userId: string, deleted: readonly string[], released: readonly string[]): Promise<void> {
    const ended = await mapBounded(released, CHECK_CONCURRENCY, (handle) => this.records.delete(handle, { owner: userId }));
    for (const handle of [...deleted, ...released.filter((_, index) => ended[index] !== null)]) {
      this.records.announce({ type: 'destroyed', reason: 'evicted', userId, handle });
    }
  }
}

/** A list as the seat script takes it: its length, then its items. */
function countedList(items: readonly string[]): ScriptArgument[] {
  return [items.length, ...items];
}
