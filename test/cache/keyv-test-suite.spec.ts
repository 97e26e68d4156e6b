import type { INestApplicationContext } from '@nestjs/common';
import keyvTestSuite, { keyvIteratorTests } from '@keyv/test-suite';
import Keyv from 'keyv';
import * as vitest from 'vitest';
import { afterAll, beforeAll, describe } from 'vitest';
import { CacheService, RedisKeyvStore } from '../../lib/index.js';
import { ownRedisSetups, type OwnRedis } from '../support/own-redis.js';
import { SLOW_BULK_OPERATIONS, startContext } from '../support/testing-app.js';

// The Keyv project's own compliance suite, run as it is: each topology registers its tests with
// vitest's `it`, `beforeEach` and `afterEach`, a new store for every Keyv the suite makes. The
// suite clears the store before and after each test, and a clear SCANs the whole keyspace: on
// servers of its own, not the ones every other suite fills.
describe.each(ownRedisSetups([]))('@keyv/test-suite over RedisKeyvStore on $topology', ({ start }) => {
  let redis: OwnRedis;
  let app: INestApplicationContext;
  beforeAll(async () => {
    redis = await start();
    app = await startContext({ connection: redis.connection, ...SLOW_BULK_OPERATIONS });
  });
  afterAll(async () => {
    await app?.close();
    await redis?.destroy();
  });

  const store = () => new RedisKeyvStore(app.get(CacheService));
  keyvTestSuite(vitest, Keyv, store);
  keyvIteratorTests(vitest, Keyv, store);
});
