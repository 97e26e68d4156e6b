/**
 * nestjs-redis-patterns/microservices: a durable Redis Streams transporter for
 * @nestjs/microservices (an optional peer, imported only by this entry point).
 */
export { RedisStreamsClient } from './microservices.client.js';
export { RedisStreamsContext, type RedisStreamsMessage } from './microservices.context.js';
export { RedisStreamsTimeoutError } from './microservices.errors.js';
export type {
  ModuleServices,
  RedisStreamsClientOptions,
  RedisStreamsCommonOptions,
  RedisStreamsServerOptions,
  StreamTrim,
} from './microservices.options.js';
export { RedisStreamsServer, type RedisStreamsPatternBacklog } from './microservices.server.js';
