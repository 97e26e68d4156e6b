import { Inject } from '@nestjs/common';
import { InvalidOptionError } from '../core/errors.js';
import { wrapMethod, type TypedMethodDecorator } from '../core/method-wrapper.js';
import { UniqueCounterService } from './unique.service.js';

/** The injection token of the counter declared as `name` under `uniqueCounters` in the module options. */
export function getUniqueCounterToken(name: string): string {
  return `RedisPatterns:UniqueCounter:${name}`;
}

/**
 * Injects a counter declared under `uniqueCounters` in the module options.
 * @example
 * constructor(@InjectUniqueCounter('visitors') private readonly visitors: UniqueCounter) {}
 */
export function InjectUniqueCounter(name: string): ParameterDecorator & PropertyDecorator {
  return Inject(getUniqueCounterToken(name));
}

/** What `@CountUnique` counts: `by` picks the item(s) from the method's arguments (null or undefined: nothing). */
export interface CountUniqueOptions<A extends unknown[]> {
  by: (...args: A) => string | readonly string[] | null | undefined;
}

/**
 * Counts `by` of each call in the counter declared as `name` under `uniqueCounters`, once the
 * method has succeeded (a call that throws counts nothing). The response never waits for Redis:
 * the addition runs in the background, and one that fails (Redis unreachable, or `by` threw) is
 * counted in `UniqueCounterService.lostCounts` and logged, an outage once. On a controller, take
 * the request as an argument (`@Req()`) to count by it. The decorated method returns a Promise;
 * `this` and its metadata are kept.
 *
 * @example
 * @Get(':slug')
 * @CountUnique<[string, Request]>('page-visitors', { by: (slug, request) => `${slug}:${request.ip}` })
 * page(@Param('slug') slug: string, @Req() request: Request) { ... }
 */
export function CountUnique<A extends unknown[] = never[]>(name: string, options: CountUniqueOptions<A>): TypedMethodDecorator<A> {
  return (target, propertyKey, descriptor) => {
    const where = `@CountUnique on ${(target as { constructor: { name: string } }).constructor.name}.${String(propertyKey)}`;
    if (typeof name !== 'string' || name.length === 0)
      throw new InvalidOptionError(`${where}.name`, 'the name of a declared counter', name);
    if (typeof options?.by !== 'function') throw new InvalidOptionError(`${where}.by`, 'a function of the arguments', options?.by);
    return wrapMethod('CountUnique', UniqueCounterService, target, propertyKey, descriptor, async (counters, call, args) => {
      const counter = counters.declaredCounter(name, where);
      const result: unknown = await call();
      counters.addInBackground(counter, () => options.by(...(args as A)), where);
      return result;
    });
  };
}
