import { Injectable, Logger } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, type DiscoverableDecorator } from '@nestjs/core';

/** A provider or controller method carrying a discoverable decorator, bound to its instance. */
export interface DecoratedMethod<T> {
  /** `ClassName.method`, for logs. */
  name: string;
  metadata: T;
  handler: (...args: unknown[]) => unknown;
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

  find<T>(decorator: DiscoverableDecorator<T>, decoratorName: string): DecoratedMethod<T>[] {
    const found: DecoratedMethod<T>[] = [];
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      // A factory or value provider has no class of its own: look at what it produced.
      const instance = wrapper.instance as Record<string, (...args: unknown[]) => unknown> | undefined;
      const type = (wrapper.inject ? instance?.constructor : wrapper.metatype) as Function | undefined;
      const prototype = type?.prototype as Record<string, unknown> | undefined;
      if (!type || !prototype || type === Object) continue;
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        const metadata = Reflect.getMetadata(decorator.KEY, prototype[methodName] as object) as T | undefined;
        if (metadata === undefined) continue;
        const name = `${type.name}.${methodName}`;
        if (!wrapper.isDependencyTreeStatic() || wrapper.isTransient || !instance) {
          this.logger.warn(`@${decoratorName} on ${name} is ignored: its class is request-scoped or transient, so there is no single instance to call.`);
          continue;
        }
        found.push({ name, metadata, handler: instance[methodName].bind(instance) });
      }
    }
    return found;
  }
}
