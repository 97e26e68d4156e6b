import { Inject } from '@nestjs/common';

/** The injection token of the index declared as `name` under `geo` in the module options. */
export function getGeoIndexToken(name: string): string {
  return `RedisPatterns:GeoIndex:${name}`;
}

/**
 * Injects an index declared under `geo` in the module options.
 * @example
 * // RedisPatternsModule.forRoot({ connection, geo: { stores: {} } })
 * constructor(@InjectGeoIndex('stores') private readonly stores: GeoIndex) {}
 */
export function InjectGeoIndex(name: string): ParameterDecorator & PropertyDecorator {
  return Inject(getGeoIndexToken(name));
}
