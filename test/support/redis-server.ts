/**
 * Real redis-server processes for the tests, the sample app and the bench: the helpers users get
 * from `nestjs-redis-patterns/testing` (lib/testing), and the probes our own suites use besides.
 */
export * from '../../lib/testing/testing.probes.js';
export * from '../../lib/testing/testing.redis-server.js';
export * from '../../lib/testing/testing.redis-cluster.js';
