import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startSample, type RunningSample } from '../../sample/sample.js';
import { command } from '../support/redis-server.js';

async function getJson(url: string): Promise<{ status: number; body: any }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.json() };
}

async function postJson(url: string, body: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: await response.json() };
}

describe('sample app with REDIS_URL', () => {
  let sample: RunningSample;
  beforeAll(async () => {
    const { host, port } = inject('redis').standalone;
    sample = await startSample({ port: 0, redisUrl: `redis://${host}:${port}`, logger: false });
  });
  afterAll(() => sample.close());

  it('uses the given server and starts none of its own', () => {
    expect(sample.ownRedis).toBeUndefined();
  });

  it('GET /health reports Redis up', async () => {
    const { status, body } = await getJson(`${sample.url}/health`);
    expect(status).toBe(200);
    expect(body.info.redis).toMatchObject({ status: 'up', mode: 'standalone' });
  });

  it('GET /visits/:page counts in Redis, with the user-supplied part encoded', async () => {
    const page = `p${Date.now()}:*`;
    const first = await getJson(`${sample.url}/visits/${encodeURIComponent(page)}`);
    const second = await getJson(`${sample.url}/visits/${encodeURIComponent(page)}`);
    expect(first.body).toEqual({ page, key: `sample:visits:${page.replace(':', '%3A').replace('*', '%2A')}`, visits: 1 });
    expect(second.body.visits).toBe(2);
  });

  it('streams notifications published on pub/sub to Server-Sent Events clients', async () => {
    const controller = new AbortController();
    const response = await fetch(`${sample.url}/notifications/stream`, { signal: controller.signal });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = response.body!.getReader();
    await expect.poll(async () => (await postJson(`${sample.url}/notifications`, { text: 'warm-up' })).body.receivers).toBeGreaterThan(0);
    await postJson(`${sample.url}/notifications`, { text: 'Parcel shipped' });
    let received = '';
    while (!received.includes('Parcel shipped')) received += new TextDecoder().decode((await reader.read()).value);
    expect(received).toMatch(/data: \{"text":"Parcel shipped","at":"\d{4}-\d\d-\d\dT[^"]+"\}/);
    controller.abort();
  });

  it('fulfils orders from the stream, and dead-letters a poison order after 3 deliveries', async () => {
    const book = await postJson(`${sample.url}/orders`, { sku: 'book', quantity: 2 });
    const poison = await postJson(`${sample.url}/orders`, { sku: 'poison' });
    expect(book.status).toBe(201);
    await expect.poll(async () => (await getJson(`${sample.url}/orders/fulfilled`)).body, { timeout: 10_000 }).toContain(book.body.orderId);
    await expect
      .poll(async () => (await getJson(`${sample.url}/orders/dead-letters`)).body.map((dead: any) => dead.event.orderId), { timeout: 15_000 })
      .toContain(poison.body.orderId);
    const dead = (await getJson(`${sample.url}/orders/dead-letters`)).body.find((entry: any) => entry.event.orderId === poison.body.orderId);
    expect(dead).toMatchObject({ originalId: poison.body.entryId, group: 'fulfilment', deliveries: 3, reason: 'max-deliveries' });
  }, 30_000);
});

describe('sample product catalog (PGlite, cached)', () => {
  let sample: RunningSample;
  beforeAll(async () => {
    const { host, port } = inject('redis').standalone;
    sample = await startSample({ port: 0, redisUrl: `redis://${host}:${port}`, logger: false });
  });
  afterAll(() => sample.close());

  const stats = async () => (await getJson(`${sample.url}/cache/stats`)).body;
  const put = async (path: string, body: unknown) =>
    (await fetch(`${sample.url}${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json();

  it('serves a product from the database once, then from the cache', async () => {
    const before = (await stats()).databaseQueries;
    const first = await getJson(`${sample.url}/products/1`);
    const second = await getJson(`${sample.url}/products/1`);
    expect(first).toEqual({ status: 200, body: { id: '1', name: 'Book', category: 'paper', priceCents: 1999 } });
    expect(second.body).toEqual(first.body);
    expect((await stats()).databaseQueries - before).toBe(1);
  });

  it('caches an unknown id as a 404 (negative caching)', async () => {
    const before = (await stats()).databaseQueries;
    expect((await getJson(`${sample.url}/products/999`)).status).toBe(404);
    expect((await getJson(`${sample.url}/products/999`)).status).toBe(404);
    expect((await stats()).databaseQueries - before).toBe(1);
  });

  it('evicts the product and the tagged lists on update, so the next reads see the new price', async () => {
    expect((await getJson(`${sample.url}/products?category=paper`)).body.map((p: any) => p.priceCents)).toEqual([1999, 499]);
    await getJson(`${sample.url}/products/2`);
    expect(await put('/products/2', { priceCents: 599 })).toMatchObject({ id: '2', priceCents: 599 });
    expect((await getJson(`${sample.url}/products/2`)).body.priceCents).toBe(599);
    expect((await getJson(`${sample.url}/products?category=paper`)).body.map((p: any) => p.priceCents)).toEqual([1999, 599]);
  });

  it('shows the hit ratio', async () => {
    const body = await stats();
    expect(body.hitRatio).toBeGreaterThan(0);
    expect(body.loaderCalls).toBeGreaterThan(0);
    expect(body).toHaveProperty('redis.hits');
  });
});

describe('sample app without REDIS_URL', () => {
  it('starts its own redis-server and stops it on close', async () => {
    const sample = await startSample({ port: 0, logger: false });
    const port = sample.ownRedis!.port;
    expect((await getJson(`${sample.url}/health`)).status).toBe(200);
    await sample.close();
    await expect(command(port, 'PING')).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe('`npm start`, as a newcomer runs it', () => {
  it('builds, starts with its own Redis, serves /health, and stops cleanly on SIGINT', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0' };
    delete env.REDIS_URL;
    const child = spawn('npm', ['start'], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));

    try {
      await expect.poll(() => /Listening on (http:\/\/\S+) /.exec(output)?.[1], { timeout: 60_000, interval: 200 }).toBeDefined();
      const url = /Listening on (http:\/\/\S+) /.exec(output)![1];
      const redisPort = Number(/started redis-server at redis:\/\/127\.0\.0\.1:(\d+)/.exec(output)![1]);
      expect((await getJson(`${url}/health`)).body.info.redis.status).toBe('up');

      // Ctrl-C reaches the whole process group (npm, and the app under it), as in a terminal.
      process.kill(-child.pid!, 'SIGINT');
      await expect.poll(() => output, { timeout: 20_000 }).toContain('Redis connection "default" closed');
      await expect.poll(() => command(redisPort, 'PING').then(() => 'up', (error: Error) => error.message), { timeout: 10_000 }).toMatch(/ECONNREFUSED/);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n--- output of npm start ---\n${output}`);
    } finally {
      // Whatever failed above, leave no app or redis-server behind.
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }, 90_000);
});
