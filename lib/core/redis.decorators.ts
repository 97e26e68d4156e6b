import { Inject } from '@nestjs/common';
import { REDIS_CLIENT, REDIS_CODEC } from './core.constants.js';

/**
 * Injects the main ioredis client (a `Redis` or a `Cluster`) for raw commands.
 *
 * @example
 * constructor(@InjectRedis() private readonly redis: Redis) {}
 */
export const InjectRedis = (): ParameterDecorator & PropertyDecorator => Inject(REDIS_CLIENT);

/**
 * Injects the module's codec, to encode and decode values the way the features do.
 *
 * @example
 * constructor(@InjectCodec() private readonly codec: RedisCodec) {}
 */
export const InjectCodec = (): ParameterDecorator & PropertyDecorator => Inject(REDIS_CODEC);
