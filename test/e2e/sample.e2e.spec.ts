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

describe('sample rate limiting', () => {
  let sample: RunningSample;
  // Its own redis-server: every counter starts empty, and the outage test can stop it.
  beforeAll(async () => {
    sample = await startSample({ port: 0, logger: false });
  });
  afterAll(() => sample.close());

  const names = async (response: Response): Promise<string[]> => ((await response.json()) as { name: string }[]).map((product) => product.name);
  const login = (body: unknown) => fetch(`${sample.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('GET /search allows 5 searches per 10s per IP, with RateLimit headers, then answers 429 with Retry-After', async () => {
    const responses: Response[] = [];
    for (let i = 0; i < 6; i++) responses.push(await fetch(`${sample.url}/search?q=ook`));
    const allowed = responses.slice(0, 5);
    expect(allowed.map((response) => response.status)).toEqual([200, 200, 200, 200, 200]);
    expect(await names(allowed[0])).toEqual(['Book', 'Notebook']);
    for (const [index, response] of allowed.entries()) {
      expect(response.headers.get('ratelimit-policy')).toBe('"search";q=5;w=10');
      expect(response.headers.get('ratelimit')).toMatch(new RegExp(`^"search";r=${4 - index};t=\\d+$`));
      expect(response.headers.get('x-ratelimit-remaining')).toBe(String(4 - index));
      expect(response.headers.get('retry-after')).toBeNull();
    }

    const rejected = responses[5];
    expect(rejected.status).toBe(429);
    expect(await rejected.json()).toMatchObject({ statusCode: 429, message: 'Rate limit exceeded (search)' });
    expect(rejected.headers.get('ratelimit-policy')).toBe('"search";q=5;w=10');
    expect(rejected.headers.get('ratelimit')).toMatch(/^"search";r=0;t=\d+$/);
    expect(rejected.headers.get('x-ratelimit-limit')).toBe('5');
    expect(rejected.headers.get('x-ratelimit-remaining')).toBe('0');
    // Sliding window: when one more fits depends on where in the window the burst fell (at most 12s).
    const retryAfter = Number(rejected.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(12);
  });

  it('POST /login blocks a username from an IP for 15 minutes after 5 attempts, even with the right password', async () => {
    for (let i = 0; i < 5; i++) expect((await login({ username: 'mallory', password: `guess-${i}` })).status).toBe(401);

    const blocked = await login({ username: 'mallory', password: 'guess-5' });
    expect(blocked.status).toBe(429);
    expect(blocked.headers.get('retry-after')).toBe('900');
    expect(blocked.headers.get('ratelimit-policy')).toBe('"login";q=5;w=60');
    expect(await blocked.json()).toMatchObject({ statusCode: 429, message: 'Rate limit exceeded (login)' });

    // The username counts however it is spelled, and the right password does not lift the block.
    const stillBlocked = await login({ username: ' Mallory ', password: 'demo' });
    expect(stillBlocked.status).toBe(429);
    expect(Number(stillBlocked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(stillBlocked.headers.get('retry-after'))).toBeLessThanOrEqual(900);

    // Another username from the same IP has its own count.
    const ann = await login({ username: 'ann', password: 'demo' });
    expect(ann.status).toBe(200);
    expect(await ann.json()).toEqual({ username: 'ann' });
    expect(ann.headers.get('ratelimit')).toMatch(/^"login";r=4;t=\d+$/);
  });

  it('POST /login without a username is limited by IP alone', async () => {
    for (let i = 0; i < 5; i++) expect((await login({ password: 'guess' })).status).toBe(400);
    const blocked = await login({});
    expect(blocked.status).toBe(429);
    expect(blocked.headers.get('retry-after')).toBe('900');
  });

  it('POST /partners/:tenant/notify: PartnerClient.notify (2 per second per tenant) makes the third quick call wait', async () => {
    const notify = async (tenant: string) => {
      const response = await fetch(`${sample.url}/partners/${tenant}/notify`, { method: 'POST' });
      return { status: response.status, body: (await response.json()) as { tenant: string; waitedMs: number } };
    };
    const calls = [await notify('acme'), await notify('acme'), await notify('acme')];
    expect(calls.map((call) => call.status)).toEqual([200, 200, 200]);
    for (const call of calls) expect(call.body).toEqual({ tenant: 'acme', waitedMs: expect.any(Number) });
    expect(calls[2].body.waitedMs).toBeGreaterThan(0);
  });

  it('while Redis is down, /login answers 503 (onStoreError: closed) and /search admits unchecked (open, the default)', async () => {
    const redis = sample.ownRedis!;
    await redis.stop();
    try {
      await expect.poll(async () => (await login({ username: 'carol', password: 'demo' })).status, { timeout: 10_000 }).toBe(503);
      // /search was over its limit in the first test; unchecked, it is admitted, without limit headers.
      const search = await fetch(`${sample.url}/search?q=pen`);
      expect(search.status).toBe(200);
      expect(await names(search)).toEqual(['Pen']);
      expect(search.headers.get('ratelimit')).toBeNull();
    } finally {
      await redis.start();
    }
    await expect.poll(async () => (await login({ username: 'carol', password: 'demo' })).status, { timeout: 15_000, interval: 200 }).toBe(200);
  }, 40_000);
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
