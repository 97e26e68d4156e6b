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

  /**
   * Sends one command in a turn of its own and waits for that turn's check phase, where the turn
   * ends: a reply read in the poll phase of the turn that sent it (a command sent from a timer can
   * get one that fast) would otherwise find the turn still open, and the commands sent next would
   * count as part of it.
   */
  async function turnOfOneCommand(key: string): Promise<void> {
    await app.get<Redis | Cluster>(REDIS_CLIENT).get(key);
    await new Promise((resolve) => setImmediate(resolve));
  }

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

  it(`50 commands sent in one tick after a lone one: the first at once, the rest in writes of ${MAX_COMMANDS_PER_WRITE} and at the turn's end; every reply is right`, async () => {
    app = await startContext({ connection: connection() });
    const redis = app.get<Redis | Cluster>(REDIS_CLIENT);
    const keys = Array.from({ length: 50 }, (_, i) => app.get(RedisKeys).tagged('wb', `k${i}`));
    const node = await connectionFor(keys[0]);
    await turnOfOneCommand(keys[0]); // the next command of an idle connection leaves at once
    const counts = countWrites((node as Redis & { stream: Socket }).stream);
    const written = keys.map((key, i) => redis.set(key, String(i)));
    expect(await Promise.all(written)).toEqual(keys.map(() => 'OK'));
    // 1 at once, then 16 + 16 + 16 in writevs, and the last one alone at the check phase.
    expect(counts).toEqual({ writev: 3, write: 2, chunks: 50, largest: MAX_COMMANDS_PER_WRITE });
    // After a turn of several, all wait: 16 + 16 + 16 + 2.
    expect(await Promise.all(keys.map((key) => redis.get(key)))).toEqual(keys.map((_, i) => String(i)));
    expect(counts).toEqual({ writev: 3 + 4, write: 2, chunks: 100, largest: MAX_COMMANDS_PER_WRITE });
  });

  it('where commands go one at a time, one on an idle connection is written at once; one sent while another awaits its reply, or after a turn of several, waits for the check phase', async () => {
    app = await startContext({ connection: connection() });
    const redis = app.get<Redis | Cluster>(REDIS_CLIENT);
    const [first, second, third] = ['lone', 'next', 'after'].map((name) => app.get(RedisKeys).tagged('wb', name));
    const node = await connectionFor(first);
    await turnOfOneCommand(first);
    const counts = countWrites((node as Redis & { stream: Socket }).stream);
    const atCheckPhase = () => new Promise<number>((resolve) => setImmediate(() => resolve(counts.chunks)));
    const replies = [redis.set(first, 'v')];
    expect(counts.chunks).toBe(1); // nothing awaited a reply: written at once
    replies.push(redis.set(second, 'w'));
    expect(counts.chunks).toBe(1); // the first awaits its reply: corked until the turn's check phase
    expect(await new Promise<number>((resolve) => process.nextTick(() => resolve(counts.chunks)))).toBe(1);
    expect(await atCheckPhase()).toBe(2);
    expect(await Promise.all(replies)).toEqual(['OK', 'OK']);
    // That turn wrote two: the next command waits for its check phase though the connection is idle.
    const afterSeveral = redis.get(second);
    expect(counts.chunks).toBe(2);
    expect(await atCheckPhase()).toBe(3);
    expect(await afterSeveral).toBe('w');
    // That turn wrote one: the next leaves at once again.
    const alone = redis.set(third, 'x');
    expect(counts.chunks).toBe(4);
    expect(await alone).toBe('OK');
  });

  it('commands written by separate callbacks of one turn share a write, as the requests an HTTP server handles in one turn do', async () => {
    app = await startContext({ connection: connection() });
    const redis = app.get<Redis | Cluster>(REDIS_CLIENT);
    const keys = ['a', 'b', 'c'].map((name) => app.get(RedisKeys).tagged('wb', `turn-${name}`));
    const node = await connectionFor(keys[0]);
    await turnOfOneCommand(keys[0]);
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
    // The first leaves at once (the connection was idle), the other two in one write.
    expect(counts).toEqual({ writev: 1, write: 1, chunks: 3, largest: 2 });
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
    await turnOfOneCommand(keys[0]);
    const counts = countWrites(streamOf(node!));
    expect(await Promise.all(keys.map((key) => redis.set(key, 'v')))).toEqual(keys.map(() => 'OK'));
    // The first at once, then 16 in one write, and 3 at the check phase.
    expect(counts).toEqual({ writev: 2, write: 1, chunks: 20, largest: MAX_COMMANDS_PER_WRITE });
  });
});
