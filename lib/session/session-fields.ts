import type { SessionInfo } from './session.options.js';
import { deadlineOf, META_FIELD, metaOfFields, UNPACKED_FIELDS, unpackMeta, type SessionMeta } from './session-meta.js';

/**
 * A session is one hash, keyed by its handle. Its fields:
 * - `m` its meta fields, packed (see {@link SessionMeta}): created, last seen, timeouts, the
 *   cookie's cap, its writer and its user (a session written by 0.1 has a field each);
 * - `d:<name>` its data fields, each encoded by the codec.
 * The key's TTL is always the session's deadline: min(lastSeen + idle, created + absolute, cap).
 */
export const DATA = 'd:';
/** The value of field `o` on the sessions `RedisSessionStore` writes. */
export const STORE_ORIGIN = 'store';
/** The data field holding the session `RedisSessionStore` saved (its data field `sess`). */
export const STORED_FIELD = `${DATA}sess`;

/** A session's data: its fields by name. */
export type SessionData = Record<string, unknown>;

/**
 * A session from its hash as a flat list of names and values (HGETALL's own reply), with its meta
 * fields beside; null when it has no meta fields (no session). A later `m` replaces an earlier one. `decodeData` decodes one data
 * field's value.
 */
export function parseSessionHash<D extends SessionData>(
  handle: string,
  flat: readonly string[],
  decodeData: (raw: string) => unknown,
): { info: SessionInfo<D>; meta: SessionMeta } | null {
  const data: SessionData = {};
  let packed: string | undefined;
  let unpacked: (string | undefined)[] | undefined;
  // One pass over the reply, as Redis sent it: no object of fields is built first.
  for (let index = 0; index < flat.length; index += 2) {
    const field = flat[index];
    const raw = flat[index + 1];
    if (field.startsWith(DATA)) {
      const name = field.slice(DATA.length);
      const value = decodeData(raw);
      // A field named __proto__ is a field, not the object's prototype.
      if (name === '__proto__') Object.defineProperty(data, name, { value, enumerable: true, writable: true, configurable: true });
      else data[name] = value;
    } else if (field === META_FIELD) packed = raw;
    else {
      // A session written by 0.1: its meta fields one each.
      const position = (UNPACKED_FIELDS as readonly string[]).indexOf(field);
      if (position >= 0) (unpacked ??= [])[position] = raw;
    }
  }
  const meta = packed !== undefined ? unpackMeta(packed) : metaOfFields(unpacked ?? []);
  if (meta === null) return null;
  const { createdAt, lastSeenAt } = meta;
  const info = { handle, userId: meta.userId || null, data: data as D, createdAt, lastSeenAt, expiresAt: deadlineOf(meta) };
  return { info, meta };
}
