/** Injection token of the validated core options (`ResolvedCoreOptions`). */
export const CORE_OPTIONS = Symbol('RedisPatterns:CoreOptions');

/** Injection token of the main ioredis client; use `@InjectRedis()`. */
export const REDIS_CLIENT = Symbol('RedisPatterns:Client');

/** Injection token of the module's codec; use `@InjectCodec()`. */
export const REDIS_CODEC = Symbol('RedisPatterns:Codec');

/** The library's name, as its meter and tracer are called (OpenTelemetry's instrumentation scope). */
export const LIBRARY_NAME = 'nestjs-redis-patterns';

/** The library's version, kept equal to package.json's by test/package.spec.ts. */
export const LIBRARY_VERSION = '0.1.0';
