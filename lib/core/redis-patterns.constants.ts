/** Injection token of the validated module options. */
export const RESOLVED_OPTIONS = Symbol('RedisPatterns:ResolvedOptions');

/** Injection token of the main ioredis client; use `@InjectRedis()`. */
export const REDIS_CLIENT = Symbol('RedisPatterns:Client');

/** Injection token of the module's codec; use `@InjectCodec()`. */
export const REDIS_CODEC = Symbol('RedisPatterns:Codec');
