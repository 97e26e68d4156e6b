import type { SessionInfo } from './session.options.js';
import { deadlineOf, META_FIELD, metaOfFields, UNPACKED_FIELDS, unpackMeta, type SessionMeta } from './session-meta.js';

/**
 * A session is one hash, keyed by its handle. Its fields:
 * - `m` its meta fields, packed (see {@link SessionMeta}): created, last seen, timeouts, the
 *   cookie's cap, its writer and its user (a session written by 0.1 has a field each);
 * - `j` its data fields, as one JSON document (see session-doc.lua), which a read decodes at
 *   once and a script updates a field at a time;
 * - or, for sessions written before `j` and those of `RedisSessionStore`, `d:<name>` for each
 *   data field, encoded by the codec.
 * The key's TTL is always the session's deadline: min(lastSeen + idle, created + absolute, cap).
 */
export const DATA = 'd:';
/** The hash field holding a session's data fields as one document. */
export const DOC_FIELD = 'j';
/** The value of field `o` on the sessions `RedisSessionStore` writes. */
export const STORE_ORIGIN = 'store';
/** The data field holding the session `RedisSessionStore` saved (its data field `sess`). */
export const STORED_FIELD = `${DATA}sess`;

/** A session's data: its fields by name. */
export type SessionData = Record<string, unknown>;

/** How a session's data is decoded: one `d:<name>` field's value, and the document `j`. */
export interface SessionDataDecoder {
  field(raw: string): unknown;
  doc(raw: string): SessionData;
}

/**
 * A session from its hash as a flat list of names and values (HGETALL's own reply), with its meta
 * fields beside; null when it has no meta fields (no session). A later `m` replaces an earlier one.
 * Its data is its document `j` when it has one (then `doc` is true), else its `d:<name>` fields.
 */
export function parseSessionHash<D extends SessionData>(
  handle: string,
  flat: readonly string[],
  decode: SessionDataDecoder,
): { info: SessionInfo<D>; meta: SessionMeta; doc: boolean } | null {
  let data: SessionData = {};
  let doc: string | undefined;
  let packed: string | undefined;
  let unpacked: (string | undefined)[] | undefined;
  // One pass over the reply, as Redis sent it: no object of fields is built first.
  for (let index = 0; index < flat.length; index += 2) {
    const field = flat[index];
    const raw = flat[index + 1];
    if (field.startsWith(DATA)) {
      const name = field.slice(DATA.length);
      const value = decode.field(raw);
      // A field named __proto__ is a field, not the object's prototype.
      if (name === '__proto__') Object.defineProperty(data, name, { value, enumerable: true, writable: true, configurable: true });
      else data[name] = value;
    } else if (field === META_FIELD) packed = raw;
    else if (field === DOC_FIELD) doc = raw;
    else {
      // A session written by 0.1: its meta fields one each.
      const position = (UNPACKED_FIELDS as readonly string[]).indexOf(field);
      if (position >= 0) (unpacked ??= [])[position] = raw;
    }
  }
  const meta = packed !== undefined ? unpackMeta(packed) : metaOfFields(unpacked ?? []);
  if (meta === null) return null;
  if (doc !== undefined) data = decode.doc(doc);
  return { info: sessionInfo<D>(handle, meta, data), meta, doc: doc !== undefined };
}

/** What a read tells of a session, from its meta fields and its data. */
export function sessionInfo<D extends SessionData>(handle: string, meta: SessionMeta, data: SessionData): SessionInfo<D> {
  const { createdAt, lastSeenAt } = meta;
  return { handle, userId: meta.userId || null, data: data as D, createdAt, lastSeenAt, expiresAt: deadlineOf(meta) };
}
