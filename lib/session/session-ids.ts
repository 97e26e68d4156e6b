import { createHash, hash, randomBytes } from 'node:crypto';
import { InvalidOptionError, ValueDescription } from '../core/errors.js';

/**
 * The ids `SessionService` makes (32 random bytes, base64url), and the handles Redis keys sessions
 * by (a SHA-256, base64url): both exactly 43 base64url characters.
 */
const BASE64URL_43 = /^[A-Za-z0-9_-]{43}$/;
/** The longest id `RedisSessionStore` accepts from session middleware. */
export const MAX_STORE_ID_LENGTH = 256;
/** Control characters (C0, DEL, C1): no session middleware puts them in an id. */
const CONTROL_CHARACTER = /\p{Cc}/u;

/**
 * Whether `id` has the form of an id `SessionService` makes (43 base64url characters), checked
 * before any Redis call: anything else is answered without asking Redis. A handle (the SHA-256 of
 * an id, base64url, as `listForUser` lists them) has the same form, so this checks handles too.
 * @example
 * if (!isSessionId(request.headers['x-session'])) throw new UnauthorizedException();
 */
export function isSessionId(id: unknown): id is string {
  return typeof id === 'string' && BASE64URL_43.test(id);
}

/**
 * Whether `id` is one `RedisSessionStore` accepts: any id express-session's `genid` or
 * @fastify/session's `idGenerator` may make, that is 1 to 256 characters of well-formed Unicode
 * without control characters. Ids are hashed before they become keys, so no character of theirs
 * ever reaches a key.
 */
export function isStoreSessionId(id: unknown): id is string {
  return typeof id === 'string' && id.length > 0 && id.length <= MAX_STORE_ID_LENGTH && !CONTROL_CHARACTER.test(id) && id.isWellFormed();
}

/** `id` when the store accepts it (see {@link isStoreSessionId}), else an InvalidOptionError naming `argument`. */
export function toStoreSessionId(argument: string, id: unknown): string {
  if (isStoreSessionId(id)) return id;
  throw new InvalidOptionError(
    argument,
    `a session id of 1 to ${MAX_STORE_ID_LENGTH} characters of well-formed Unicode without control characters`,
    new ValueDescription('a malformed id (not shown)'),
  );
}

/** The base64url alphabet, each character at the value it stands for. */
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * A new id for `SessionService`: 32 random bytes, base64url. With a `slot` (a session kept in its
 * user's Redis Cluster slot, see {@link isKeptInSlot}), 30 random bytes (240 bits) and the slot.
 */
export function newSessionId(slot?: number): string {
  const bytes = randomBytes(32);
  return slot === undefined ? bytes.toString('base64url') : markedWithSlot(bytes, slot);
}

/**
 * Whether this id or handle (43 base64url characters, see {@link isSessionId}) is one of a
 * session kept in its user's slot: its 32 bytes end with the slot (2 bytes), and its last
 * character is marked. The base64url of 32 bytes ends with a character whose 2 lowest bits carry
 * nothing and are 0 in every id and handle made otherwise (those of `RedisSessionStore` and
 * sessions without a seat limit); in these, the lowest is 1.
 */
export function isKeptInSlot(idOrHandle: string): boolean {
  return (BASE64URL.indexOf(idOrHandle[42]) & 1) === 1;
}

/** The slot of an id or handle for which {@link isKeptInSlot} holds. */
export function slotOf(idOrHandle: string): number {
  return Buffer.from(idOrHandle, 'base64url').readUInt16BE(30) & 0x3fff;
}

/** `bytes` (32) ending with `slot`, base64url, with the last character marked (see {@link isKeptInSlot}). */
function markedWithSlot(bytes: Buffer, slot: number): string {
  bytes.writeUInt16BE(slot, 30);
  const text = bytes.toString('base64url');
  return text.slice(0, -1) + BASE64URL[BASE64URL.indexOf(text[42]) | 1];
}

/**
 * What Redis stores instead of an id of `SessionService` (see {@link isSessionId}): its SHA-256,
 * base64url (the session's handle). For a session kept in its user's slot, the first 30 bytes of
 * the SHA-256 and the slot, marked as the id is, so that the handle alone names the session's key.
 */
export function handleOf(id: string): string {
  return isKeptInSlot(id) ? markedWithSlot(createHash('sha256').update(id).digest(), slotOf(id)) : hashOf(id);
}

/** The SHA-256 of an id, base64url: the handle of an id of `RedisSessionStore` (any text), and of an id of `SessionService` made without a slot. */
export function hashOf(id: string): string {
  return hash('sha256', id, 'base64url');
}
