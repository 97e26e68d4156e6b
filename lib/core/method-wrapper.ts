import { Inject, type Type } from '@nestjs/common';
import { RedisPatternsError } from './errors.js';

/**
 * A method decorator that fits only methods whose parameters begin with `A` and that return `R`
 * (or a Promise of it): options written for `(id: number)` on a method of `(id: string)` do not
 * compile. A key function may use fewer parameters than the method has.
 *
 * @example
 * @Cacheable({ key: (id: number) => `product:${id}` })
 * find(id: string) {} // error: string is not number
 */
export type TypedMethodDecorator<A extends unknown[], R = unknown> = <M extends (...args: [...A, ...never[]]) => R | Promise<R>>(
  target: object,
  propertyKey: string | symbol,
  descriptor: TypedPropertyDescriptor<M>,
) => TypedPropertyDescriptor<M> | void;

/** Metadata of a wrapped method: the services its decorators use (`[CacheService, LockService]`). */
export const WRAPPED_BY = 'redis-patterns:wrapped-by';

/** Calls the original method; `wrap` decides when and how. */
export type MethodWrap<S> = (
  service: S,
  call: () => unknown,
  args: unknown[],
  method: { className: string; methodName: string },
) => unknown;

/**
 * The template of every method decorator that needs one of the module's services (`@Cacheable`,
 * `@WithLock`...): the service is property-injected into the class when the decorator runs, the
 * method is replaced by a `function` that keeps `this`, and the original method's metadata (route,
 * guards, other decorators) is copied onto the replacement.
 */
export function wrapMethod<S>(
  decoratorName: string,
  serviceType: Type<S>,
  target: object,
  propertyKey: string | symbol,
  descriptor: PropertyDescriptor,
  wrap: MethodWrap<S>,
): PropertyDescriptor {
  const original: unknown = descriptor.value;
  const className = (target as { constructor: { name: string } }).constructor.name;
  const methodName = String(propertyKey);
  if (typeof original !== 'function')
    throw new RedisPatternsError(`@${decoratorName} can only decorate methods; ${className}.${methodName} is not one.`);
  const method = { className, methodName };
  const serviceProperty = `__redisPatterns${serviceType.name}`;
  Inject(serviceType)(target, serviceProperty);
  const wrapped = function (this: Record<string, unknown>, ...args: unknown[]) {
    const service = this?.[serviceProperty] as S | undefined;
    if (!service) {
      throw new RedisPatternsError(
        `@${decoratorName} on ${className}.${methodName} has no ${serviceType.name}: the class must be created by Nest, in a module that imports RedisPatternsModule (or with isGlobal: true).`,
      );
    }
    return wrap(service, () => original.apply(this, args), args, method);
  };
  copyMethodMetadata(original, wrapped);
  // Marked, so the module can tell which features an app uses (for the maxmemory-policy check).
  Reflect.defineMetadata(WRAPPED_BY, [...((Reflect.getMetadata(WRAPPED_BY, original) as Type[] | undefined) ?? []), serviceType], wrapped);
  Object.defineProperty(wrapped, 'name', { value: original.name });
  descriptor.value = wrapped;
  return descriptor;
}

function copyMethodMetadata(from: object, to: object): void {
  for (const key of Reflect.getMetadataKeys(from)) Reflect.defineMetadata(key, Reflect.getMetadata(key, from), to);
}
