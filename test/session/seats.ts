import type { INestApplicationContext } from '@nestjs/common';
import { PubSubService, RedisConnections, RedisKeys, type SessionEvent } from '../../lib/index.js';
import { isKeptInSlot, slotOf } from '../../lib/session/session-ids.js';
import { unpackMeta } from '../../lib/session/session-meta.js';
import { slotTag } from '../../lib/session/session-slots.js';
import { scanKeys } from '../support/scan.js';

let users = 0;
/** A user id no other test uses. */
export const freshUser = (name = 'user') => `${name}-${++users}-${Math.random().toString(36).slice(2, 8)}`;

/**
 * The live sessions of `userId` as Redis holds them, whatever the index says: every session key
 * under the app's prefix (SCAN on every master) whose meta fields name the user. Sorted keys.
 */
export async function sessionKeysInRedis(app: INestApplicationContext, userId: string): Promise<string[]> {
  const redis = app.get(RedisConnections).get();
  const keys = await scanKeys(redis, `${app.get(RedisKeys).prefix}{s:*`);
  const owners = await Promise.all(keys.map(async (key) => unpackMeta((await redis.hget(key, 'm')) ?? '')?.userId));
  return keys.filter((_, index) => owners[index] === userId).sort();
}

/** The key of the session with this handle: in its user's slot (`{s:<slot tag>}:<handle>`) or its own (`{s:<handle>}`). */
export function sessionKeyOf(app: INestApplicationContext, handle: string): string {
  const keys = app.get(RedisKeys);
  return isKeptInSlot(handle) ? keys.tagged(['s', slotTag(slotOf(handle))], handle) : keys.tagged(['s', handle]);
}

/** Records the session events an instance receives, from the moment it is subscribed. */
export async function sessionEvents(app: INestApplicationContext): Promise<{ events: SessionEvent[]; stop: () => void }> {
  const pubsub = app.get(PubSubService);
  const events: SessionEvent[] = [];
  const subscription = pubsub.subscribe<SessionEvent>('sessions').subscribe((event) => events.push(event));
  await pubsub.whenSubscribed('sessions');
  return { events, stop: () => subscription.unsubscribe() };
}

/** The handles of the evictions of `userId` among `events`, sorted. */
export function evictedOf(events: readonly SessionEvent[], userId: string): string[] {
  return events
    .filter((event) => event.type === 'destroyed' && event.reason === 'evicted' && event.userId === userId)
    .map((event) => event.handle)
    .sort();
}
