/**
 * `nestjs-redis-patterns/testing`: real Redis servers for your e2e tests, started from the
 * redis-server on PATH on free loopback ports. No in-memory fake: what passes here passes on Redis.
 */
export { RedisServerNotFoundError, RedisTestServer, type RedisTestServerOptions } from './testing.redis-server.js';
export { RedisTestCluster, RedisTestSentinel, type RedisTestClusterOptions } from './testing.redis-cluster.js';
export { command, waitFor, type Address } from './testing.probes.js';
