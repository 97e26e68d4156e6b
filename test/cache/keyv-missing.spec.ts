import { describe, expect, it, vi } from 'vitest';
import { CacheService, RedisKeyvStore } from '../../lib/index.js';
import { startContext, topologies } from '../support/testing-app.js';

// As if keyv were not installed beside the library: it is an optional peer, imported for types only.
vi.mock('keyv', () => {
  throw new Error("Cannot find package 'keyv'");
});

describe('the library without keyv installed', () => {
  it('loads, starts, and its Keyv store works without Keyv', async () => {
    const app = await startContext({ connection: topologies[0].connection() });
    const store = app.get(RedisKeyvStore);
    await store.set('plain', '{"value":"text","expires":99999999999999}', 60_000);
    expect(await app.get(CacheService).get('plain')).toBe('text');
    expect(await store.get('plain')).toMatch(/^\{"value":"text","expires":\d+\}$/);
    await app.close();
  });
});
