import { Injectable, Logger, type Type } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, type DiscoverableDecorator } from '@nestjs/core';
import { WRAPPED_BY } from './method-wrapper.js';

/** A provider or controller method carrying a discoverable decorator, bound to its instance. */
export interface DecoratedMethod<T> {
  /** `ClassName.method`, for logs. */
  name: string;
  metadata: T;
  handler: (...args: unknown[]) => unknown;
  /** The instance the handler is bound to. */
  instance: object;
}

/**
 * Finds the methods that carry a decorator made with `DiscoveryService.createDecorator()`, in
 * every provider and controller, and binds them to their instance. Request-scoped and transient
 * classes have no single instance to bind to: they are skipped with a warning.
 */
@Injectable()
export class DecoratedMethodsExplorer {
  private readonly logger = new Logger('RedisPatterns');

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
  ) {}

  /**
   * Whether some provider or controller has a method whose decorator uses `service` (`@Cacheable`
   * uses CacheService, `@WithLock` LockService): tells whether the app uses a feature.
   */
  usesService(service: Type): boolean {
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      const prototype = (wrapper.metatype as Type | undefined)?.prototype as Record<string, unknown> | undefined;
      if (!prototype) continue;
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        const services = Reflect.getMetadata(WRAPPED_BY, prototype[methodName] as object) as Type[] | undefined;
        if (services?.includes(service)) return true;
      }
    }
    return false;
  }

  find<T>(decorator: DiscoverableDecorator<T>, decoratorName: string): DecoratedMethod<T>[] {
    const found: DecoratedMethod<T>[] = [];
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      // A factory or value provider has no class of its own: look at what it produced.
      const instance = wrapper.instance as Record<string, (...args: unknown[]) => unknown> | undefined;
      const type = (wrapper.inject ? instance?.constructor : wrapper.metatype) as Type | undefined;
      const prototype = type?.prototype as Record<string, unknown> | undefined;
      if (!type || !prototype || type === Object) continue;
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        const metadata = Reflect.getMetadata(decorator.KEY, prototype[methodName] as object) as T | undefined;
        if (metadata === undefined) continue;
        const name = `${type.name}.${methodName}`;
        if (!wrapper.isDependencyTreeStatic() || wrapper.isTransient || !instance) {
          this.logger.warn(
            `@${decoratorName} on ${name} is ignored: its class is request-scoped or transient, so there is no single instance to call.`,
          );
          continue;
        }
        found.push({ name, metadata, handler: instance[methodName].bind(instance), instance });
      }
    }
    return found;
  }
}
