import { RedisScript } from '../core/redis-script.js';

/**
 * A session's fields other than its data, as one hash field (`m`, see session-meta.lua): a read
 * of a session is then its data fields and one more, where these took seven.
 */
export interface SessionMeta {
  /** When it was created, and last used (ms, Redis's clock). */
  createdAt: number;
  lastSeenAt: number;
  idleTtlMs: number;
  absoluteTtlMs: number;
  /** The expiry of `RedisSessionStore`'s cookie, which caps the session (ms, Redis's clock); Infinity for none. */
  cap: number;
  /** `'store'` for sessions written by `RedisSessionStore`, '' for `SessionService`'s. */
  origin: string;
  /** '' for none. */
  userId: string;
}

/** The hash field holding a session's meta fields. */
export const META_FIELD = 'm';
/** The fields a session written by 0.1 holds them in, one each, in {@link metaOfFields}'s order. */
export const UNPACKED_FIELDS = ['c', 'l', 'i', 'a', 'e', 'o', 'u'] as const;

const PACKED = /^(\d+),(\d+),(\d+),(\d+),(\d*),([a-z]*),/;

/** The meta fields in `m` (null when ill-formed). The user id comes last: it may hold commas. */
export function unpackMeta(packed: string): SessionMeta | null {
  const match = PACKED.exec(packed);
  if (match === null) return null;
  const [prefix, created, seen, idle, absolute, cap, origin] = match;
  return {
    createdAt: Number(created),
    lastSeenAt: Number(seen),
    idleTtlMs: Number(idle),
    absoluteTtlMs: Number(absolute),
    cap: cap === '' ? Infinity : Number(cap),
    origin,
    userId: packed.slice(prefix.length),
  };
}

export function packMeta({ createdAt, lastSeenAt, idleTtlMs, absoluteTtlMs, cap, origin, userId }: SessionMeta): string {
  return [createdAt, lastSeenAt, idleTtlMs, absoluteTtlMs, cap === Infinity ? '' : cap, origin, userId].join(',');
}

/** The meta fields of a session written by 0.1, from its {@link UNPACKED_FIELDS} (null when it has none). */
export function metaOfFields([created, seen, idle, absolute, cap, origin, user]: readonly (
  string | null | undefined
)[]): SessionMeta | null {
  const meta = {
    createdAt: Number(created ?? Number.NaN),
    lastSeenAt: Number(seen ?? Number.NaN),
    idleTtlMs: Number(idle ?? Number.NaN),
    absoluteTtlMs: Number(absolute ?? Number.NaN),
    cap: cap == null ? Infinity : Number(cap),
    origin: origin ?? '',
    userId: user ?? '',
  };
  return [meta.createdAt, meta.lastSeenAt, meta.idleTtlMs, meta.absoluteTtlMs].some(Number.isNaN) ? null : meta;
}

/** When the session ends, its absolute deadline aside: min(createdAt + absoluteTtl, cap). */
function fixedDeadlineOf(meta: SessionMeta): number {
  return Math.min(meta.createdAt + meta.absoluteTtlMs, meta.cap);
}

/** When the session ends: min(lastSeenAt + idleTtl, createdAt + absoluteTtl, cap). */
export function deadlineOf(meta: SessionMeta): number {
  return Math.min(meta.lastSeenAt + meta.idleTtlMs, fixedDeadlineOf(meta));
}

/** A session script of this folder, after the functions they share (session-meta.lua) and the other `preludes` it uses. */
export function sessionScript(file: string, ...preludes: string[]): RedisScript {
  const here = (name: string) => new URL(`./${name}`, import.meta.url);
  return RedisScript.fromFile(here(file), here('session-meta.lua'), ...preludes.map(here));
}
