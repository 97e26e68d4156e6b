import { toPositiveMilliseconds } from '../core/duration.js';
import { InvalidOptionError } from '../core/errors.js';
import { wrapMethod, type TypedMethodDecorator } from '../core/method-wrapper.js';
import { toInstanceName } from '../core/validation.js';
import type { WriteBehindOptions } from './write-behind.options.js';
import { WriteBehindService } from './write-behind.service.js';
import { DEFAULT_WRITE_BEHIND_QUEUE, WRITE_BEHIND } from './write-behind.target.js';

/**
 * Turns a method that persists a value (a repository's `save(user)`) into a write-behind: a call
 * writes the value to the cache at once (readers through `@Cacheable` and `CacheService` see it,
 * and other instances' L1 copies are dropped as for any write) and records the write durably in
 * Redis with a job to persist it; it resolves once both are in Redis, without running the method.
 * A worker on any instance runs the method later with the newest value of the key: several writes
 * of one key before it gets there are persisted once, and an older value never overwrites a newer
 * one. Failures are retried with the queue's backoff, then dead-lettered (see `Queue`). The
 * decorated method resolves with undefined; `this` and its metadata are kept.
 *
 * @example
 * @Injectable()
 * export class UsersRepository {
 *   @WriteBehind({ key: (user: User) => `user:${user.id}`, ttl: '10m' })
 *   async save(user: User): Promise<void> { await this.db.users.upsert(user); }
 *
 *   @Cacheable({ key: (id: string) => `user:${id}`, ttl: '10m' })
 *   async find(id: string): Promise<User> { return this.db.users.find(id); }
 * }
 */
export function WriteBehind<A extends unknown[] = never[]>(options: WriteBehindOptions<A>): TypedMethodDecorator<A> {
  return (target, propertyKey, descriptor) => {
    const className = (target as { constructor: { name: string } }).constructor.name;
    const where = `@WriteBehind on ${className}.${String(propertyKey)}`;
    if (typeof options?.key !== 'function')
      throw new InvalidOptionError(`${where}.key`, 'a function of the arguments returning the cache key', options?.key);
    if (options.value !== undefined && typeof options.value !== 'function')
      throw new InvalidOptionError(`${where}.value`, 'a function of the arguments', options.value);
    if (options.ttl !== undefined) toPositiveMilliseconds(options.ttl, `${where}.ttl`);
    const queue = options.queue ?? DEFAULT_WRITE_BEHIND_QUEUE;
    if (typeof queue !== 'string' || queue.length === 0) throw new InvalidOptionError(`${where}.queue`, 'a queue name', queue);
    const name = options.name ?? `${className}.${String(propertyKey)}`;
    toInstanceName(name, 'a target', `${where}.name`);
    const original = descriptor.value as unknown as (...args: unknown[]) => unknown;
    const wrapped = wrapMethod('WriteBehind', WriteBehindService, target, propertyKey, descriptor, async (service, _call, args) => {
      await service.write({ name, queue }, options as unknown as WriteBehindOptions<unknown[]>, args, where);
    });
    WRITE_BEHIND({ name, queue, original })(target, propertyKey, wrapped);
    return wrapped;
  };
}
