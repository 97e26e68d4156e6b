import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  InvalidOptionError,
  RedisConnections,
  RedisUnavailableError,
  TransactionPoolClosedError,
  TransactionService,
} from '../../lib/index.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { freePort, HOST } from '../support/redis-server.js';
import { scanKeys } from '../support/scan.js';
import { startContext, standaloneConnection } from '../support/testing-app.js';

/** Shorter than the 2 s pauses below, and long enough for a connection to open on a loaded machine. */
const quick = { connectTimeout: '1s', commandTimeout: '1s', reconnect: { minDelay: '20ms', maxDelay: '100ms' } } as const;

afterEach(() => {
  vi.restoreAllMocks();
});

describe('optimistic transactions when Redis is away', () => {
  const own = ownRedisServer();

  it("reject at once with RedisUnavailableError (503), logged once in the library's words, and work again once it is back", async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await startContext({ connection: own.server.address, ...quick });
    const transactions = app.get(TransactionService);
    expect((await transactions.optimistic('k', (tx) => tx.set('k', 1))).committed).toBe(true);
    await own.server.stop();
    for (let i = 0; i < 3; i++) {
      const error = await transactions.optimistic('k', (tx) => tx.set('k', 2)).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(RedisUnavailableError);
      expect(error).toMatchObject({ statusCode: 503, feature: 'optimistic transactions', outage: 'disconnected' });
    }
    const messages = warn.mock.calls.map(([message]) => String(message)).filter((message) => message.includes('optimistic transactions'));
    expect(messages).toEqual([
      'Redis connection "default" is unavailable to optimistic transactions (no connection to the server); they reject with RedisUnavailableError (503) until it is back',
    ]);
    await own.server.start();
    // Once its connection is back (reconnecting every 20-100 ms), it commits again.
    await vi.waitFor(async () => expect((await transactions.optimistic('k', (tx) => tx.set('k', 3))).committed).toBe(true), {
      timeout: 5_000,
      interval: 50,
    });
    await app.close();
  });

  it('reject with RedisUnavailableError (timeout) when a read gets no reply within commandTimeout, writing nothing', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await startContext({ connection: own.server.address, ...quick });
    const transactions = app.get(TransactionService);
    const admin = new Redis(own.server.address);
    const error = await transactions
      .optimistic('slow', async (tx) => {
        await tx.get('slow');
        // Awaited: the server answers nobody from now on (for 2s), before the next read is sent.
        await admin.call('CLIENT', 'PAUSE', '2000', 'ALL');
        await tx.get('slow');
        tx.set('slow', 'written');
      })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect(error).toMatchObject({ outage: 'timeout' });
    // Answered once the pause is over (CLIENT UNPAUSE would be paused too).
    expect(await scanKeys(admin, '*slow*')).toEqual([]);
    expect((await transactions.optimistic('slow', () => 'ok')).result).toBe('ok');
    await admin.quit();
    await app.close();
  });

  it('reject with RedisUnavailableError (timeout) when a connection cannot be opened within commandTimeout, not once the server answers', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    // A connectTimeout longer than the pause: only commandTimeout bounds the opening.
    const app = await startContext({ connection: own.server.address, ...quick, connectTimeout: '10s' });
    const transactions = app.get(TransactionService);
    const admin = new Redis(own.server.address);
    // The server accepts connections but answers nobody (as when packets are dropped); the module's
    // own connection stays ready. A new dedicated connection cannot say hello. (The pause ends by
    // itself: CLIENT UNPAUSE would be paused too.)
    await admin.call('CLIENT', 'PAUSE', '2000', 'ALL');
    const error = await transactions.optimistic('paused', (tx) => tx.set('paused', 1)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect(error).toMatchObject({ statusCode: 503, outage: 'timeout' });
    expect(await admin.exists('paused')).toBe(0);
    expect((await transactions.optimistic('paused', () => 'ok')).result).toBe('ok');
    await admin.quit();
    await app.close();
  });

  it('while the connection is down, reject every caller with RedisUnavailableError, never a pool timeout; after shutdown, TransactionPoolClosedError (503)', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await startContext({ connection: own.server.address, ...quick, transaction: { poolSize: 1, acquireTimeout: '50ms' } });
    const transactions = app.get(TransactionService);
    await own.server.stop();
    await expect.poll(() => app.get(RedisConnections).get().status).not.toBe('ready');
    const errors = await Promise.all(
      Array.from({ length: 5 }, () => transactions.optimistic('k', (tx) => tx.set('k', 1)).catch((caught: unknown) => caught)),
    );
    for (const error of errors) expect(error).toBeInstanceOf(RedisUnavailableError);
    expect(transactions.openConnections).toBe(0);
    await own.server.start();
    await app.close();
    const closed = await transactions.optimistic('k', () => 1).catch((caught: unknown) => caught);
    expect(closed).toBeInstanceOf(TransactionPoolClosedError);
    expect((closed as TransactionPoolClosedError).getStatus()).toBe(503);
  });

  it('use connections of their own, named nrp:<name>:tx, closed at shutdown', async () => {
    const app = await startContext({ connection: own.server.address });
    const admin = new Redis(own.server.address);
    const names = async (): Promise<string[]> => String(await admin.call('CLIENT', 'LIST')).match(/name=\S+/g) ?? [];
    await Promise.all([1, 2, 3].map(() => app.get(TransactionService).optimistic('c', () => new Promise((r) => setTimeout(r, 50)))));
    expect((await names()).filter((name) => name === 'name=nrp:default:tx')).toHaveLength(3);
    await app.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await names()).not.toContain('name=nrp:default:tx');
    await admin.quit();
  });

  it('on a Cluster that knows no master, reject with RedisUnavailableError', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await startContext({ connection: { cluster: { nodes: [{ host: HOST, port: await freePort() }] } }, ...quick });
    const error = await app
      .get(TransactionService)
      .optimistic('k', () => undefined)
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RedisUnavailableError);
    await app.close();
  });
});

describe('transaction options', () => {
  it.each([
    [{ poolSize: 0 }, /"transaction\.poolSize": expected an integer from 1 to 1000, got 0/],
    [{ poolSize: 2.5 }, /"transaction\.poolSize"/],
    [{ acquireTimeout: 'soon' }, /"transaction\.acquireTimeout"/],
    [{ size: 3 }, /"transaction\.size": expected one of the known options/],
  ])('refuses %j at startup, naming the option', async (transaction, message) => {
    const started = startContext({ connection: standaloneConnection(), transaction: transaction as never });
    await expect(started).rejects.toThrow(InvalidOptionError);
    await expect(startContext({ connection: standaloneConnection(), transaction: transaction as never })).rejects.toThrow(message);
  });

  it('refuses bad call options and keys before sending anything', async () => {
    const app = await startContext({ connection: standaloneConnection() });
    const transactions = app.get(TransactionService);
    await expect(transactions.optimistic('k', () => 1, { maxAttempts: 0 })).rejects.toThrow(/"options\.maxAttempts"/);
    await expect(transactions.optimistic('k', () => 1, { backoff: { minDelay: '1s', maxDelay: '1ms' } })).rejects.toThrow(
      /"options\.backoff\.maxDelay"/,
    );
    await expect(transactions.optimistic([], () => 1)).rejects.toThrow(/"keys"/);
    await expect(transactions.optimistic([''], () => 1)).rejects.toThrow(/"keys"/);
    expect(transactions.openConnections).toBe(0);
    await app.close();
  });
});
