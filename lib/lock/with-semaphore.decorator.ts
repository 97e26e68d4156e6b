import { InvalidOptionError, RedisPatternsError } from '../core/errors.js';
import { wrapMethod, type TypedMethodDecorator } from '../core/method-wrapper.js';
import { toPositiveInteger, toTextArgument } from '../core/validation.js';
import { LockNotAcquiredError } from './lock.exception.js';
import type { AcquireOptions } from './lock.options.js';
import { resolveAcquireOptions } from './lock.options-validator.js';
import { LockService } from './lock.service.js';

/**
 * Options of {@link WithSemaphore}.
 *
 * @example
 * @WithSemaphore<[string]>('exports', { permits: 2, key: (tenantId) => tenantId, wait: '10s' })
 * async export(tenantId: string) { ... }
 */
export interface WithSemaphoreOptions<A extends unknown[] = unknown[]> extends AcquireOptions {
  /** How many calls may run at once across every instance: a number, or a function of the arguments. */
  permits: number | ((...args: A) => number);
  /** One semaphore per value, named `<name>:<key>`: a string, or a function of the arguments. */
  key?: string | ((...args: A) => string);
  /** When no permit is free: throw `LockNotAcquiredError` (HTTP 409), or skip the call (it returns undefined). @default 'throw' */
  onBusy?: 'throw' | 'skip';
}

/**
 * Runs the method holding one permit of the semaphore `name` (of `permits` permits, shared by
 * every instance), renewed every ttl/3 while it runs (unless `autoExtend: false`) and given back
 * when it ends. Inside, `LockService.current()` is the permit (for its `fencingToken` and
 * `signal`). When no permit is free within `wait` the call throws `LockNotAcquiredError` (HTTP
 * 409 on a controller), or with `onBusy: 'skip'` is not run and returns undefined. Redis
 * unreachable always throws (reason `'store-unavailable'`, 503): the method never runs without a
 * permit. The decorated method returns a Promise; `this` and its metadata are kept.
 *
 * @example
 * @Post('reports/sales')
 * @WithSemaphore('sales-report', { permits: 2, wait: '5s', ttl: '1m' })
 * buildSalesReport() { ... }
 *
 * @WithSemaphore<[Tenant]>('imports', { key: (tenant) => tenant.id, permits: (tenant) => tenant.plan === 'pro' ? 4 : 1 })
 * async import(tenant: Tenant) { ... }
 */
export function WithSemaphore<A extends unknown[] = never[]>(name: string, options: WithSemaphoreOptions<A>): TypedMethodDecorator<A> {
  return (target, propertyKey, descriptor) => {
    const where = `@WithSemaphore on ${(target as { constructor: { name: string } }).constructor.name}.${String(propertyKey)}`;
    toTextArgument(`${where}: name`, name);
    const { permits, key, onBusy = 'throw', ttl, wait, autoExtend } = options ?? ({} as WithSemaphoreOptions<A>);
    if (typeof permits !== 'function') toPositiveInteger(`${where}.permits`, permits);
    if (key !== undefined && typeof key !== 'function') toTextArgument(`${where}.key`, key);
    if (onBusy !== 'throw' && onBusy !== 'skip') throw new InvalidOptionError(`${where}.onBusy`, "'throw' or 'skip'", onBusy);
    const acquire = { ttl, wait, autoExtend };
    // Durations are checked now against the defaults' shape; the module's defaults apply at the call.
    resolveAcquireOptions(options, { ttlMs: 1, waitMs: 0 }, true, where, ['ttl', 'wait', 'autoExtend', 'permits', 'key', 'onBusy']);
    return wrapMethod('WithSemaphore', LockService, target, propertyKey, descriptor, async (locks, call, args) => {
      const semaphore = locks.semaphore(
        key === undefined ? name : `${name}:${textOf(key, args as A, where, 'key')}`,
        toPositiveInteger(`${where}.permits`, typeof permits === 'function' ? valueOf(permits, args as A, where, 'permits') : permits),
      );
      let permit;
      try {
        permit = await semaphore.take(acquire, true, where);
      } catch (error) {
        if (onBusy === 'skip' && error instanceof LockNotAcquiredError && error.reason !== 'store-unavailable') return undefined;
        throw error;
      }
      return locks.runHolding(permit, call);
    });
  };
}

function textOf<A extends unknown[]>(key: string | ((...args: A) => string), args: A, where: string, option: string): string {
  return toTextArgument(`${where}.${option}`, typeof key === 'function' ? valueOf(key, args, where, option) : key);
}

/** What an option's function gives for the call's arguments; its failure names the option. */
function valueOf<A extends unknown[], T>(fn: (...args: A) => T, args: A, where: string, option: string): T {
  try {
    return fn(...args);
  } catch (error) {
    throw new RedisPatternsError(`${where}: the ${option} function threw: ${(error as Error)?.message ?? error}`, { cause: error });
  }
}
