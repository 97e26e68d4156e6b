import type { Socket } from 'node:net';
import type { Cluster, Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { REDIS_CLIENT, RedisKeys } from '../../lib/index.js';
import { MAX_COMMANDS_PER_WRITE } from '../../lib/core/write-batching.js';
import { startContext, topologies } from '../support/testing-app.js';
import type { INestApplicationContext } from '@nestjs/common';

/** Counts the writes that reach a socket's handle: one `_writev` carries several chunks, one `_write` one. */
function countWrites(socket: Socket) {
  const counts = { writev: 0, write: 0, chunks: 0, largest: 0 };
  const target = socket as Socket & {
    _writev?: (chunks: { chunk: unknown }[], cb: () => void) => void;
    _write: (...args: unknown[]) => void;
  };
  const writev = target._writev!.bind(socket);
  const write = target._write.bind(socket);
  target._writev = (chunks, cb) => {
    counts.writev++;
    counts.chunks += chunks.length;
    counts.largest = Math.max(counts.largest, chunks.length);
    writev(chunks, cb);
  };
  target._write = (...args: unknown[]) => {
    counts.write++;
    counts.chunks++;
    write(...args);
  };
  return counts;
}

describe.each(topologies)('writes of one turn of the event loop in one system call ($topology)', ({ topology, connection }) => {
  let app: INestApplicationContext;
  afterEach(() => app?.close());

  /** The connection the keys of hash tag `tag` are sent on: the server's, or on a Cluster the master of their slot. */
  async function connectionFor(tag: string): Promise<Redis> {
    const client = app.get<Redis | Cluster>(REDIS_CLIENT);
    if (topology === 'standalone') return client as Redis;
    const cluster = client as Cluster;
    await cluster.get(tag); // the slot map is known once a command went through
    const slot = (await cluster.cluster('KEYSLOT', tag)) as number;
    const [host, port] = (cluster as unknown as { slots: string[][] }).slots[slot][0].split(':');
    return cluster.nodes('master').find((node) => node.options.host === host && node.options.port === Number(port))!;
  }

  it(`50 commands sent in one tick leave in writes of ${MAX_COMMANDS_PER_WRITE}, the rest at the turn's end, and every reply is right`, async () => {
    app = await startContext({ connection: connection() });
    const redis = app.get<Redis | Cluster>(REDIS_CLIENT);
    const keys = Array.from({ length: 50 }, (_, i) => app.get(RedisKeys).tagged('wb', `k${i}`));
    const node = await connectionFor(keys[0]);
    const counts = countWrites((node as Redis & { stream: Socket }).stream);
    const written = keys.map((key, i) => redis.set(key, String(i)));
    expect(await Promise.all(written)).toEqual(keys.map(() => 'OK'));
    const writes = Math.ceil(50 / MAX_COMMANDS_PER_WRITE); // 16 + 16 + 16 + 2
    expect(counts).toEqual({ writev: writes, write: 0, chunks: 50, largest: MAX_COMMANDS_PER_WRITE });
    expect(await Promise.all(keys.map((key) => redis.get(key)))).toEqual(keys.map((_, i) => String(i)));
    expect(counts).toEqual({ writev: 2 * writes, write: 0, chunks: 100, largest: MAX_COMMANDS_PER_WRITE });
  });

  it('a lone command is written in the turn it is sent (its check phase), not at a later turn of the event loop', async () => {
    app = await startContext({ connection: connection() });
    const redis = app.get<Redis | Cluster>(REDIS_CLIENT);
    const key = app.get(RedisKeys).tagged('wb', 'lone');
    const node = await connectionFor(key);
    const counts = countWrites((node as Redis & { stream: Socket }).stream);
    const reply = redis.set(key, 'v');
    expect(counts.chunks).toBe(0); // corked until the turn's check phase
    const atTickEnd = await new Promise<number>((resolve) => process.nextTick(() => resolve(counts.chunks)));
    expect(atTickEnd).toBe(0);
    const atCheckPhase = await new Promise<number>((resolve) => setImmediate(() => resolve(counts.chunks)));
    expect(atCheckPhase).toBe(1);
    expect(await reply).toBe('OK');
  });

  it('commands written by separate callbacks of one turn share a write, as the requests an HTTP server handles in one turn do', async () => {
    app = await startContext({ connection: connection() });
    const redis = app.get<Redis | Cluster>(REDIS_CLIENT);
    const keys = ['a', 'b', 'c'].map((name) => app.get(RedisKeys).tagged('wb', `turn-${name}`));
    const node = await connectionFor(keys[0]);
    const counts = countWrites((node as Redis & { stream: Socket }).stream);
    const sent = await new Promise<Promise<string>[]>((resolve) => {
      const replies: Promise<string>[] = [];
      // Two callbacks of one check phase, each writing and ending its own tick.
      setImmediate(() => replies.push(redis.set(keys[0], 'a'), redis.set(keys[1], 'b')));
      setImmediate(() => {
        replies.push(redis.set(keys[2], 'c'));
        resolve(replies);
      });
    });
    expect(await Promise.all(sent)).toEqual(['OK', 'OK', 'OK']);
    expect(counts).toEqual({ writev: 1, write: 0, chunks: 3, largest: 3 });
    expect(await Promise.all(keys.map((key) => redis.get(key)))).toEqual(['a', 'b', 'c']);
  });

  it("sends commands while an app's test fakes the global timers (setImmediate included)", async () => {
    app = await startContext({ connection: connection() });
    const redis = app.get<Redis | Cluster>(REDIS_CLIENT);
    const key = app.get(RedisKeys).tagged('wb', 'fake-timers');
    await connectionFor(key);
    // Taken before the timers are faked: a command that never leaves fails here instead of hanging the run.
    const realSetTimeout = globalThis.setTimeout;
    const within2s = <T>(reply: Promise<T>) =>
      Promise.race([reply, new Promise<never>((_, reject) => realSetTimeout(() => reject(new Error('no reply within 2s')), 2_000))]);
    vi.useFakeTimers();
    try {
      expect(await within2s(redis.set(key, 'v'))).toBe('OK');
      expect(await within2s(redis.get(key))).toBe('v');
    } finally {
      vi.useRealTimers();
    }
  });

  it('a connection that reconnected batches its writes too', async () => {
    app = await startContext({ connection: connection() });
    const redis = app.get<Redis | Cluster>(REDIS_CLIENT);
    const keys = Array.from({ length: 20 }, (_, i) => app.get(RedisKeys).tagged('wb', `r${i}`));
    const streamOf = (node: Redis) => (node as Redis & { stream: Socket }).stream;
    const before = streamOf(await connectionFor(keys[0]));
    before.destroy();
    // A server connection reconnects; a Cluster replaces the node's connection with a new one.
    let node: Redis | undefined;
    await expect
      .poll(async () => {
        node = await connectionFor(keys[0]).catch(() => undefined);
        return node?.status === 'ready' && streamOf(node) !== before;
      })
      .toBe(true);
    const counts = countWrites(streamOf(node!));
    expect(await Promise.all(keys.map((key) => redis.set(key, 'v')))).toEqual(keys.map(() => 'OK'));
    expect(counts).toEqual({ writev: Math.ceil(20 / MAX_COMMANDS_PER_WRITE), write: 0, chunks: 20, largest: MAX_COMMANDS_PER_WRITE });
  });
});
