import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { LockService, RedisConnections, RedisKeys } from '../../lib/index.js';
import { RedisSessionStore } from '../../lib/session/express-session.store.js';
import { CART_MAX_AGE_MS } from '../../sample/cart.controller.js';
import { PaymentsService } from '../../sample/payments.service.js';
import { SALES_EXPORT_PERMITS } from '../../sample/reports.controller.js';
import { startSample, type RunningSample } from '../../sample/sample.js';
import { command } from '../support/redis-server.js';
import { scanKeys } from '../support/scan.js';

// The nightly report's @Cron fires every 2 seconds here (read when its module loads), so its runs show.
vi.hoisted(() => {
  process.env.NIGHTLY_REPORT_CRON = '*/2 * * * * *';
});

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

  it('GET /pages/:slug counts distinct visitors per page today and over 7 days, and the site with @CountUnique', async () => {
    const slug = `page-${Date.now()}`;
    const view = (visitor?: string) =>
      fetch(`${sample.url}/pages/${slug}`, { headers: visitor ? { 'x-visitor': visitor } : {} }).then(async (response) => ({
        status: response.status,
        body: (await response.json()) as { today: number; last7Days: number; message?: string },
      }));
    const siteBefore = (await getJson(`${sample.url}/pages`)).body.today as number;
    const [ann, bob] = [`ann-${slug}`, `bob-${slug}`];
    expect((await view(ann)).body).toEqual({ page: slug, today: 1, last7Days: 1 });
    await view(bob);
    expect((await view(ann)).body).toEqual({ page: slug, today: 2, last7Days: 2 });
    expect(await view()).toMatchObject({ status: 400, body: { message: 'the x-visitor header is required' } });
    expect((await fetch(`${sample.url}/pages/Not_A_Slug`, { headers: { 'x-visitor': 'ann' } })).status).toBe(400);
    // Two new visitors of the site today (counted in the background).
    await expect.poll(async () => (await getJson(`${sample.url}/pages`)).body.today).toBe(siteBefore + 2);
  });

  it('GET /stores/near finds the stores within km of a place, nearest first, with distances; bad coordinates are a 400', async () => {
    const { status, body } = await getJson(`${sample.url}/stores/near?lng=2.3522&lat=48.8566&km=5`);
    expect(status).toBe(200);
    const found = body as { member: string; distance: number }[];
    expect(found.map((store) => store.member)).toEqual(['louvre', 'bastille', 'montmartre']);
    // The Louvre is about 1.2 km from the Hotel de Ville, the Bastille about 1.3 km.
    expect(found[0].distance).toBeGreaterThan(1.1);
    expect(found[0].distance).toBeLessThan(found[1].distance);
    expect(found[1].distance).toBeLessThan(1.4);
    expect((await getJson(`${sample.url}/stores/near?lng=2.3522&lat=48.8566&km=20`)).body).toHaveLength(5);
    const refused = await getJson(`${sample.url}/stores/near?lng=200&lat=48.8566`);
    expect(refused.status).toBe(400);
    expect(refused.body.message).toMatch(/longitude/);
    expect((await getJson(`${sample.url}/stores/near?lat=48.8566`)).status).toBe(400);
    expect((await getJson(`${sample.url}/stores/near?lng=2.35&lat=48.85&km=500`)).status).toBe(400);
  });

  it('POST /activity/:userId marks daily actives; GET /activity/daily and /activity/retention count them exactly', async () => {
    const day = (daysAgo: number) => new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10);
    const mark = (user: string, daysAgo: number) =>
      postJson(`${sample.url}/activity/${user}?day=${day(daysAgo)}`, {}).then((response) => response.body.newThatDay as boolean);
    const users = ['ann', 'bob', 'cy'].map((name) => `${name}-${Date.now()}`);
    for (const user of users) expect(await mark(user, 7)).toBe(true);
    expect(await mark(users[0], 7)).toBe(false);
    for (const user of users.slice(0, 2)) await mark(user, 6);
    await mark(users[0], 0);
    const retention = (await getJson(`${sample.url}/activity/retention?cohort=${day(7)}`)).body;
    expect(retention.cohort).toBe(3);
    expect(retention.periods[0]).toEqual({ offset: 1, active: 2, rate: 2 / 3 });
    expect(retention.periods[6]).toEqual({ offset: 7, active: 1, rate: 1 / 3 });
    const daily = (await getJson(`${sample.url}/activity/daily`)).body;
    expect(daily.days).toHaveLength(7);
    expect(daily.days[5]).toEqual({ day: day(1).slice(0, 10), active: 0 });
    expect(daily.days[6].active).toBe(1);
    expect(daily.everyDay).toBe(0);
    expect((await postJson(`${sample.url}/activity/ann?day=yesterday`, {})).status).toBe(400);
  });

  it('POST /queue/emails enqueues jobs that a worker sends; a jobId again while its job lives is one job; GET /queue/emails counts', async () => {
    const before = (await getJson(`${sample.url}/queue/emails`)).body.sentHere as number;
    // A job delayed for a minute lives meanwhile: the same jobId again is the same job.
    const jobId = `welcome-${Date.now()}`;
    const later = { to: 'ann@example.com', subject: 'Welcome', jobId, delayMs: 60_000 };
    const first = await postJson(`${sample.url}/queue/emails`, later);
    const again = await postJson(`${sample.url}/queue/emails`, later);
    expect(first.status).toBe(202);
    expect(again.body.id).toBe(first.body.id);
    await postJson(`${sample.url}/queue/emails`, { to: 'bob@example.com' });
    await expect.poll(async () => (await getJson(`${sample.url}/queue/emails`)).body.sentHere).toBe(before + 1);
    expect((await getJson(`${sample.url}/queue/emails`)).body).toMatchObject({ waiting: 0, active: 0, delayed: 1, dead: 0 });
    expect((await postJson(`${sample.url}/queue/emails`, { to: 'not an address' })).status).toBe(400);
  });

  it('POST /accounts/transfer moves money with optimistic transactions: exact under 40 concurrent transfers, never below zero', async () => {
    const balance = async (id: string) => (await getJson(`${sample.url}/accounts/${id}`)).body.balance as number;
    const total = (await balance('alice')) + (await balance('bob'));
    const moved = await postJson(`${sample.url}/accounts/transfer`, { from: 'alice', to: 'bob', amount: 1 });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ from: 'alice', to: 'bob', amount: 1 });
    const transfers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        postJson(
          `${sample.url}/accounts/transfer`,
          i % 2 ? { from: 'alice', to: 'bob', amount: 3 } : { from: 'bob', to: 'alice', amount: 2 },
        ),
      ),
    );
    expect(transfers.every((response) => response.status === 200 || response.status === 409)).toBe(true);
    expect((await balance('alice')) + (await balance('bob'))).toBe(total);
    expect(await balance('alice')).toBeGreaterThanOrEqual(0);
    const short = await postJson(`${sample.url}/accounts/transfer`, { from: 'alice', to: 'bob', amount: 1_000_000 });
    expect(short).toMatchObject({ status: 409, body: { message: 'insufficient funds' } });
    expect((await postJson(`${sample.url}/accounts/transfer`, { from: 'alice', to: 'alice', amount: 1 })).status).toBe(400);
    expect((await getJson(`${sample.url}/accounts/nobody`)).status).toBe(404);
  });

  it('PUT /profiles/:id writes behind: readable through the cache at once, in SQL once persisted, the latest of several saves', async () => {
    const id = `ann-${Date.now()}`;
    const put = (name: string) =>
      fetch(`${sample.url}/profiles/${id}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name, bio: 'Hi' }),
      });
    expect((await put('Ann')).status).toBe(202);
    for (const name of ['Ann B', 'Ann C']) await put(name);
    expect((await getJson(`${sample.url}/profiles/${id}`)).body).toEqual({ id, name: 'Ann C', bio: 'Hi' });
    await expect
      .poll(async () => (await getJson(`${sample.url}/profiles/${id}/database`)).body.inDatabase)
      .toEqual({ id, name: 'Ann C', bio: 'Hi' });
    await expect.poll(async () => (await getJson(`${sample.url}/write-behind/lag`)).body.pending).toBe(0);
    expect((await put('')).status).toBe(400);
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
      .poll(async () => (await getJson(`${sample.url}/orders/dead-letters`)).body.map((dead: any) => dead.event.orderId), {
        timeout: 15_000,
      })
      .toContain(poison.body.orderId);
    const dead = (await getJson(`${sample.url}/orders/dead-letters`)).body.find(
      (entry: any) => entry.event.orderId === poison.body.orderId,
    );
    expect(dead).toMatchObject({ originalId: poison.body.entryId, group: 'fulfilment', deliveries: 3, reason: 'max-deliveries' });
  }, 30_000);

  it('emits order.placed to the fulfilment microservice, which ships each order once; quotes a delivery by request/response', async () => {
    const orders = await Promise.all(Array.from({ length: 5 }, () => postJson(`${sample.url}/orders`, { sku: 'pen', quantity: 1 })));
    const ids = orders.map((order) => order.body.orderId);
    await expect
      .poll(async () => (await getJson(`${sample.url}/orders/shipped`)).body, { timeout: 10_000 })
      .toEqual(expect.arrayContaining(ids));
    const quote = await getJson(`${sample.url}/orders/quote?sku=book&quantity=3`);
    expect(quote).toMatchObject({ status: 200, body: { sku: 'book', days: 2, priceCents: 699 } });
  });
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
    (
      await fetch(`${sample.url}${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    ).json();

  it('serves a product from the database once, then from the cache', async () => {
    const before = (await stats()).databaseQueries;
    const first = await getJson(`${sample.url}/products/1`);
    const second = await getJson(`${sample.url}/products/1`);
    expect(first).toEqual({ status: 200, body: { id: '1', name: 'Book', category: 'paper', priceCents: 1999 } });
    expect(second.body).toEqual(first.body);
    expect((await stats()).databaseQueries - before).toBe(1);
  });

  it('drops a product from L1 when its cache entry changes behind the app (client tracking), so the next read shows the change', async () => {
    const read = async () => {
      const before = (await stats()).l1.hits;
      const { body } = await getJson(`${sample.url}/products/4`);
      return { name: body.name as string, fromL1: (await stats()).l1.hits > before };
    };
    await expect.poll(read).toEqual({ name: 'Stapler', fromL1: true });
    // Another service rewrites the entry with a plain client, as `redis-cli SET` would.
    const { host, port } = inject('redis').standalone;
    const plain = new Redis({ host, port });
    const changed = { id: '4', name: 'Stapler (rewritten elsewhere)', category: 'office', priceCents: 1299 };
    await plain.set('sample:{c:product:4}', `${Date.now() + 60_000}|${JSON.stringify(changed)}`, 'PX', 60_000);
    plain.disconnect();
    await expect.poll(async () => (await read()).name).toBe('Stapler (rewritten elsewhere)');
  });

  it('GET /metrics answers Prometheus text whose cache counters match /cache/stats', async () => {
    await getJson(`${sample.url}/products/2`);
    await getJson(`${sample.url}/products/2`);
    const response = await fetch(`${sample.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    const series = (name: string) =>
      Number(
        text
          .split('\n')
          .find((line) => line.startsWith(`${name} `))
          ?.split(' ')[1],
      );
    const cache = (await stats()) as { redis: { hits: number }; loaderCalls: number };
    expect(series('redis_patterns_cache_requests_total{tier="redis",result="hit"}')).toBe(cache.redis.hits);
    expect(series('redis_patterns_cache_loader_calls_total')).toBe(cache.loaderCalls);
    expect(cache.loaderCalls).toBeGreaterThan(0);
    expect(text).toContain('# TYPE redis_patterns_ratelimit_decisions_total counter');
  });

  it("GET /insights answers the server's numbers and the largest keys per feature; /metrics and /health carry them too", async () => {
    await getJson(`${sample.url}/products/3`);
    const { status, body } = await getJson(`${sample.url}/insights`);
    expect(status).toBe(200);
    const { host, port } = inject('redis').standalone;
    expect(body.snapshot.nodes).toEqual([expect.objectContaining({ node: `${host}:${port}`, available: true, role: 'master' })]);
    expect(body.snapshot.nodes[0].memory.usedBytes).toBeGreaterThan(0);
    const features = body.bigKeys.features as { feature: string; keys: number; bytes: number; largest: { key: string; bytes: number }[] }[];
    expect(features.map((feature) => feature.feature)).toEqual(expect.arrayContaining(['cache', 'geo', 'Bloom filters']));
    for (const feature of features) {
      expect(feature.bytes).toBeGreaterThan(0);
      for (const big of feature.largest) expect(big.key.startsWith('sample:')).toBe(true);
    }
    expect(body.bigKeys.scanned).toBeLessThanOrEqual(1000);
    // The interval's first snapshot is taken at startup.
    const metrics = await (await fetch(`${sample.url}/metrics`)).text();
    expect(metrics).toMatch(
      new RegExp(`^redis_patterns_redis_memory_used_bytes\\{connection="default",node="${host}:${port}"\\} \\d+$`, 'm'),
    );
    expect((await getJson(`${sample.url}/health`)).body.info.redis.server).toMatchObject({ available: true, nodes: 1 });
  });

  it("POST /cache/invalidate deletes a tag's entries and says how many, so the next read reaches the database", async () => {
    await getJson(`${sample.url}/products?category=paper`);
    await getJson(`${sample.url}/products?category=office`);
    const before = (await stats()).databaseQueries;
    await getJson(`${sample.url}/products?category=paper`);
    expect((await stats()).databaseQueries).toBe(before);
    const response = await fetch(`${sample.url}/cache/invalidate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tag: 'product-lists' }),
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { deleted: number }).deleted).toBeGreaterThanOrEqual(2);
    await getJson(`${sample.url}/products?category=paper`);
    expect((await stats()).databaseQueries).toBe(before + 1);
    // Only the tags the sample allows: 400, and the entries stay.
    for (const body of [{ tag: 'sessions' }, { tag: '' }, {}]) {
      const refused = await fetch(`${sample.url}/cache/invalidate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(refused.status).toBe(400);
      expect(((await refused.json()) as { message: string }).message).toBe('tag must be one of: product-lists');
    }
    await getJson(`${sample.url}/products?category=paper`);
    expect((await stats()).databaseQueries).toBe(before + 1);
  });

  it('caches a whole response with CacheInterceptor: X-Cache MISS, then HIT without a query', async () => {
    const before = (await stats()).databaseQueries;
    const first = await fetch(`${sample.url}/catalog/summary`);
    const second = await fetch(`${sample.url}/catalog/summary`);
    expect([first.headers.get('x-cache'), second.headers.get('x-cache')]).toEqual(['MISS', 'HIT']);
    const body = await first.json();
    expect(body).toEqual(expect.arrayContaining([{ category: 'paper', products: expect.any(Number) }]));
    expect(await second.json()).toEqual(body);
    expect((await stats()).databaseQueries - before).toBe(1);
  });

  it("GET /catalog/overview is cached by @nestjs/cache-manager's interceptor on RedisKeyvStore, in the library's cache", async () => {
    const before = (await stats()).databaseQueries;
    const first = await fetch(`${sample.url}/catalog/overview`);
    expect(first.headers.get('x-cache')).toBe('MISS');
    const body = await first.json();
    expect(body).toEqual(expect.arrayContaining([{ category: 'paper', products: expect.any(Number) }]));
    // Its interceptor stores after answering; CacheService then reads the same entry, for @CacheTTL(30_000).
    await expect.poll(async () => (await getJson(`${sample.url}/catalog/overview/entry`)).body.cached).toBe(true);
    const entry = (await getJson(`${sample.url}/catalog/overview/entry`)).body;
    expect(entry.value).toEqual(body);
    expect(entry.freshForMs).toBeGreaterThan(25_000);
    expect(entry.freshForMs).toBeLessThanOrEqual(30_000);
    const redis = sample.app.get(RedisConnections).get();
    expect(await redis.pttl(`${sample.app.get(RedisKeys).prefix}{c:/catalog/overview}`)).toBeLessThanOrEqual(30_000);
    const second = await fetch(`${sample.url}/catalog/overview`);
    expect(second.headers.get('x-cache')).toBe('HIT');
    expect(await second.json()).toEqual(body);
    expect((await stats()).databaseQueries - before).toBe(1);
  });

  it('answers unknown ids 404 from the Bloom filter: a flood of random ids never reaches the database', async () => {
    await expect.poll(async () => (await getJson(`${sample.url}/products-filter`)).body.built).toBe(true);
    expect((await getJson(`${sample.url}/products-filter`)).body).toMatchObject({
      backend: 'bitmap',
      capacity: 100_000,
      errorRate: 0.001,
      items: 5,
    });
    const before = (await stats()).databaseQueries;
    const flood = await Promise.all(Array.from({ length: 300 }, (_, i) => getJson(`${sample.url}/products/random-${i}`)));
    expect(flood.every(({ status }) => status === 404)).toBe(true);
    // At 0.1% false positives, almost none of the 300 reach the database.
    expect((await stats()).databaseQueries - before).toBeLessThan(5);
  });

  it('POST /products adds the id to the filter after the insert, so the new product is found at once', async () => {
    expect((await getJson(`${sample.url}/products/new-1`)).status).toBe(404);
    expect(await postJson(`${sample.url}/products`, { id: 'new-1', name: 'Ruler', category: 'office', priceCents: 150 })).toEqual({
      status: 201,
      body: { id: 'new-1', name: 'Ruler', category: 'office', priceCents: 150 },
    });
    expect(await getJson(`${sample.url}/products/new-1`)).toEqual({
      status: 200,
      body: { id: 'new-1', name: 'Ruler', category: 'office', priceCents: 150 },
    });
    expect((await postJson(`${sample.url}/products`, { id: 'new-1', name: 'Ruler', category: 'office', priceCents: 150 })).status).toBe(
      409,
    );
    expect((await postJson(`${sample.url}/products`, { id: 'bad id!', name: 'x', category: 'y', priceCents: 1 })).status).toBe(400);
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

  const names = async (response: Response): Promise<string[]> =>
    ((await response.json()) as { name: string }[]).map((product) => product.name);
  const login = (body: unknown) =>
    fetch(`${sample.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

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

  it('GET /quotes/random: ThrottlerGuard counting in Redis allows 3 per 10s per IP, then 429 with Retry-After for the 30s block', async () => {
    const responses: Response[] = [];
    for (let i = 0; i < 4; i++) responses.push(await fetch(`${sample.url}/quotes/random`));
    const allowed = responses.slice(0, 3);
    expect(allowed.map((response) => response.status)).toEqual([200, 200, 200]);
    for (const [index, response] of allowed.entries()) {
      expect(await response.json()).toEqual({ quote: expect.any(String) });
      expect(response.headers.get('x-ratelimit-limit')).toBe('3');
      expect(response.headers.get('x-ratelimit-remaining')).toBe(String(2 - index));
      expect(response.headers.get('x-ratelimit-reset')).toBe('10');
    }
    const rejected = responses[3];
    expect(rejected.status).toBe(429);
    expect(rejected.headers.get('retry-after')).toBe('30');
    expect(await rejected.json()).toEqual({ statusCode: 429, message: 'ThrottlerException: Too Many Requests' });
    // The count is in Redis, under the sample's prefix: the window, the block and the counted hits.
    const keys = await scanKeys(sample.app.get(RedisConnections).get(), 'sample:{th:*');
    expect(keys.map((key) => key.replace(/^sample:\{th:[0-9a-f]{64}:default\}/, '<record>')).sort()).toEqual(['<record>', '<record>:hits']);
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

  it('while Redis is down, /login answers 503 (onStoreError: closed), /search and /quotes/random admit unchecked (open, the default)', async () => {
    const redis = sample.ownRedis!;
    await redis.stop();
    try {
      await expect.poll(async () => (await login({ username: 'carol', password: 'demo' })).status, { timeout: 10_000 }).toBe(503);
      // /search was over its limit in the first test; unchecked, it is admitted, without limit headers.
      const search = await fetch(`${sample.url}/search?q=pen`);
      expect(search.status).toBe(200);
      expect(await names(search)).toEqual(['Pen']);
      expect(search.headers.get('ratelimit')).toBeNull();
      // /quotes/random was blocked in an earlier test; unchecked (the default 'open'), it is admitted.
      expect((await fetch(`${sample.url}/quotes/random`)).status).toBe(200);
    } finally {
      await redis.start();
    }
    await expect
      .poll(async () => (await login({ username: 'carol', password: 'demo' })).status, { timeout: 15_000, interval: 200 })
      .toBe(200);
  }, 40_000);
});

describe('sample sessions', () => {
  let sample: RunningSample;
  // Its own redis-server, so the outage test can stop it.
  beforeAll(async () => {
    sample = await startSample({ port: 0, logger: false });
  });
  afterAll(() => sample.close());

  // Cookies by hand, as a browser would: Set-Cookie in, Cookie out.
  const call = async (
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    { cookie, userAgent, body }: { cookie?: string; userAgent?: string; body?: unknown } = {},
  ) => {
    const headers: Record<string, string> = {};
    if (cookie) headers.cookie = cookie;
    if (userAgent) headers['user-agent'] = userAgent;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${sample.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const setCookie = response.headers.getSetCookie();
    return { status: response.status, body: (await response.json()) as any, setCookie, cookie: setCookie[0]?.split(';')[0] };
  };
  const login = (username: string, options: { cookie?: string; userAgent?: string } = {}) =>
    call('POST', '/session/login', { ...options, body: { username, password: 'demo' } });
  const profile = (cookie: string) => call('GET', '/session/profile', { cookie });
  const list = (cookie: string) => call('GET', '/session/list', { cookie });
  const cleared = /^sid=; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax$/;
  const isoDate = expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  // The login limit (5 a minute per username and IP) counts every login of a name: a name per test.
  const user = (name: string) => `${name}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

  it('visit, login (a new id: the anonymous one stops working), profile, a second device, list, log out everywhere else, log out', async () => {
    // A first visit: an anonymous session, in a signed HttpOnly Secure SameSite cookie.
    const visit = await call('POST', '/session/visit', { userAgent: 'laptop' });
    expect(visit.status).toBe(200);
    expect(visit.body).toEqual({
      created: true,
      session: {
        userId: null,
        data: { visitedAt: isoDate, userAgent: 'laptop' },
        createdAt: isoDate,
        lastSeenAt: isoDate,
        expiresAt: isoDate,
      },
    });
    expect(visit.setCookie).toHaveLength(1);
    // Max-Age: the absolute timeout (8h), less the moments since Redis stamped the session.
    expect(visit.setCookie[0]).toMatch(/^sid=[^;]+; Max-Age=(28800|2879\d); Path=\/; HttpOnly; Secure; SameSite=Lax$/);
    const anonymous = visit.cookie!;
    // Visiting again keeps the session.
    const again = await call('POST', '/session/visit', { cookie: anonymous });
    expect(again).toMatchObject({ status: 200, body: { created: false, session: { userId: null } }, setCookie: [] });
    expect((await profile(anonymous)).body).toMatchObject({ userId: null, data: { visitedAt: visit.body.session.data.visitedAt } });

    // Login: a session under a new id, for the user, carrying the anonymous session's data.
    const ann = user('Ann');
    const laptopLogin = await login(ann, { cookie: anonymous, userAgent: 'laptop' });
    expect(laptopLogin.status).toBe(200);
    expect(laptopLogin.setCookie[0]).toMatch(/^sid=[^;]+; Max-Age=\d+; Path=\/; HttpOnly; Secure; SameSite=Lax$/);
    const laptop = laptopLogin.cookie!;
    expect(laptop).not.toBe(anonymous);
    expect(laptopLogin.body).toEqual({
      userId: ann.toLowerCase(),
      data: { visitedAt: visit.body.session.data.visitedAt, username: ann, loggedInAt: isoDate, userAgent: 'laptop' },
      createdAt: isoDate,
      lastSeenAt: isoDate,
      expiresAt: isoDate,
    });

    // The pre-login id is dead (401, and its cookie is cleared); the new one opens the profile.
    const stale = await profile(anonymous);
    expect(stale.status).toBe(401);
    expect(stale.setCookie).toEqual([expect.stringMatching(cleared)]);
    const me = await profile(laptop);
    expect(me.status).toBe(200);
    expect(me.body).toEqual(laptopLogin.body);

    // The same user logs in from another device.
    const phoneLogin = await login(ann, { userAgent: 'phone' });
    expect(phoneLogin.status).toBe(200);
    expect(phoneLogin.body).toMatchObject({ userId: ann.toLowerCase(), data: { username: ann, userAgent: 'phone' } });
    expect(phoneLogin.body.data).not.toHaveProperty('visitedAt');
    const phone = phoneLogin.cookie!;

    // Both devices list both sessions, each marking its own as current, without any session id.
    const fromLaptop = await list(laptop);
    expect(fromLaptop.status).toBe(200);
    expect(fromLaptop.body).toHaveLength(2);
    expect(fromLaptop.body.filter((session: any) => session.current)).toHaveLength(1);
    for (const session of fromLaptop.body) {
      expect(session).toEqual({
        handle: expect.stringMatching(/^[\w-]{43}$/),
        current: expect.any(Boolean),
        userAgent: expect.any(String),
        createdAt: isoDate,
        lastSeenAt: isoDate,
        expiresAt: isoDate,
      });
    }
    const byDevice = (sessions: any[]) =>
      Object.fromEntries(sessions.map((session) => [session.userAgent, { handle: session.handle, current: session.current }]));
    const laptopView = byDevice(fromLaptop.body);
    expect(laptopView).toEqual({
      laptop: { handle: expect.any(String), current: true },
      phone: { handle: expect.any(String), current: false },
    });
    const fromPhone = await list(phone);
    expect(byDevice(fromPhone.body)).toEqual({
      laptop: { ...laptopView.laptop, current: false },
      phone: { ...laptopView.phone, current: true },
    });
    const ids = [anonymous, laptop, phone].map((cookie) => decodeURIComponent(cookie.slice('sid='.length)).split('.')[0]);
    for (const id of ids) expect(JSON.stringify(fromLaptop.body)).not.toContain(id);

    // Log out everywhere else, from the laptop: the phone is out, the laptop stays in.
    expect(await call('POST', '/session/logout-others', { cookie: laptop })).toMatchObject({ status: 200, body: { ended: 1 } });
    expect((await profile(phone)).status).toBe(401);
    const remaining = await list(laptop);
    expect(remaining.body).toHaveLength(1);
    expect(remaining.body[0]).toMatchObject({ handle: laptopView.laptop.handle, current: true, userAgent: 'laptop' });

    // Log out: the session ends and the cookie is cleared.
    const logout = await call('POST', '/session/logout', { cookie: laptop });
    expect(logout).toMatchObject({ status: 200, body: { loggedOut: true } });
    expect(logout.setCookie).toEqual([expect.stringMatching(cleared)]);
    const after = await profile(laptop);
    expect(after.status).toBe(401);
    expect(after.setCookie).toEqual([expect.stringMatching(cleared)]);
    expect((await call('POST', '/session/logout', { cookie: laptop })).body).toEqual({ loggedOut: false });
  });

  it('a fourth device logging in ends the oldest session (maxSessionsPerUser: 3, evict-oldest)', async () => {
    const dan = user('dan');
    const devices = ['laptop', 'phone', 'tablet', 'tv'];
    const cookies: string[] = [];
    for (const userAgent of devices) {
      const loggedIn = await login(dan, { userAgent });
      expect(loggedIn.status).toBe(200);
      cookies.push(loggedIn.cookie!);
    }
    // The laptop's session, the oldest, is over: 401, and its cookie cleared.
    const laptop = await profile(cookies[0]);
    expect(laptop.status).toBe(401);
    expect(laptop.setCookie).toEqual([expect.stringMatching(cleared)]);
    const listed = await list(cookies[3]);
    expect(listed.body.map((session: any) => session.userAgent)).toEqual(['phone', 'tablet', 'tv']);
    for (const cookie of cookies.slice(1)) expect((await profile(cookie)).status).toBe(200);
  });

  it('the same user logging in again gets the same session under a new id (regenerate)', async () => {
    const bob = user('bob');
    const first = await login(bob);
    const second = await login(bob, { cookie: first.cookie });
    expect(second.status).toBe(200);
    expect(second.cookie).not.toBe(first.cookie);
    expect(second.body).toMatchObject({ userId: bob, createdAt: first.body.createdAt, data: { username: bob } });
    expect((await profile(first.cookie!)).status).toBe(401);
    expect((await list(second.cookie!)).body).toEqual([expect.objectContaining({ current: true, createdAt: first.body.createdAt })]);
  });

  it('401 without a session, 403 for lists on an anonymous one, 401 for a wrong password, 400 without a username or with one that is not text', async () => {
    expect((await call('GET', '/session/profile')).status).toBe(401);
    expect((await call('GET', '/session/list')).status).toBe(401);
    expect((await call('POST', '/session/logout-others')).status).toBe(401);
    const anonymous = (await call('POST', '/session/visit')).cookie!;
    expect((await list(anonymous)).status).toBe(403);
    expect((await call('POST', '/session/logout-others', { cookie: anonymous })).status).toBe(403);
    const wrong = await call('POST', '/session/login', { cookie: anonymous, body: { username: user('carol'), password: 'guess' } });
    expect(wrong).toMatchObject({ status: 401, setCookie: [] });
    expect((await call('POST', '/session/login', { body: { password: 'demo' } })).status).toBe(400);
    // A username that is not text (a lone surrogate) is a bad request, not a 500 from the rate limiter or the session.
    expect((await call('POST', '/session/login', { body: { username: 'ZQY\ud801', password: 'demo' } })).status).toBe(400);
    // A failed login leaves the anonymous session as it was.
    expect((await profile(anonymous)).status).toBe(200);
    // A forged cookie is refused and cleared.
    const forged = await profile(`sid=${encodeURIComponent(`${'A'.repeat(43)}.forged`)}`);
    expect(forged.status).toBe(401);
    expect(forged.setCookie).toEqual([expect.stringMatching(cleared)]);
  });

  it('a cart in express-session with RedisSessionStore: kept across requests, expiring in Redis with its cookie, gone on clear', async () => {
    const first = await call('POST', '/cart/items', { body: { productId: 'p-1' } });
    expect(first).toMatchObject({ status: 200, body: { items: ['p-1'] } });
    const cookie = first.cookie!;
    expect(first.setCookie[0]).toMatch(/^cart=s%3A[^;]+; Path=\/cart; Expires=[^;]+; HttpOnly; SameSite=Lax$/);
    expect((await call('POST', '/cart/items', { cookie, body: { productId: 'p-2' } })).body).toEqual({ items: ['p-1', 'p-2'] });
    expect((await call('GET', '/cart', { cookie })).body).toEqual({ items: ['p-1', 'p-2'] });
    // The key expires with the cookie (10 minutes), not with the module's 30-minute idle timeout.
    const sid = decodeURIComponent(cookie.slice('cart='.length)).slice('s:'.length).split('.')[0];
    const key = `${sample.app.get(RedisKeys).tagged(['s', RedisSessionStore.handleOf(sid)])}`;
    const ttl = await sample.app.get(RedisConnections).get().pttl(key);
    expect(ttl).toBeGreaterThan(CART_MAX_AGE_MS - 60_000);
    expect(ttl).toBeLessThanOrEqual(CART_MAX_AGE_MS);
    expect(await call('DELETE', '/cart', { cookie })).toMatchObject({ status: 200, body: { cleared: true } });
    expect(await sample.app.get(RedisConnections).get().exists(key)).toBe(0);
    expect((await call('GET', '/cart', { cookie })).body).toEqual({ items: [] });
  });

  it('while Redis is down, the session routes answer 503 (no session is assumed), and work again once it is back', async () => {
    const dave = user('dave');
    const cookie = (await login(dave)).cookie!;
    const redis = sample.ownRedis!;
    await redis.stop();
    try {
      await expect.poll(async () => (await profile(cookie)).status, { timeout: 10_000 }).toBe(503);
      expect((await list(cookie)).status).toBe(503);
      expect((await call('POST', '/session/visit')).status).toBe(503);
      expect((await login(dave)).status).toBe(503);
      const logout = await call('POST', '/session/logout', { cookie });
      expect(logout.status).toBe(503);
      // The cookie is kept: the session may well still be live.
      expect(logout.setCookie).toEqual([]);
    } finally {
      await redis.start();
    }
    // This redis-server keeps no data over a restart, so the session is gone; logging in works again.
    await expect.poll(async () => (await login(dave)).status, { timeout: 15_000, interval: 200 }).toBe(200);
    expect((await profile(cookie)).status).toBe(401);
    expect((await profile((await login(dave)).cookie!)).status).toBe(200);
  }, 40_000);
});

describe('sample locks (PGlite)', () => {
  let sample: RunningSample;
  beforeAll(async () => {
    const { host, port } = inject('redis').standalone;
    sample = await startSample({ port: 0, redisUrl: `redis://${host}:${port}`, logger: false });
  });
  afterAll(() => sample.close());

  const newOrder = async (totalCents: number) => {
    const orderId = `o-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
    const invoiced = await postJson(`${sample.url}/orders/${orderId}/invoice`, { totalCents });
    expect(invoiced).toEqual({ status: 201, body: { orderId, totalCents, balanceCents: totalCents, status: 'open', fencingToken: 0 } });
    return orderId;
  };
  const pay = (orderId: string, body: unknown = {}) => postJson(`${sample.url}/orders/${orderId}/pay`, body);
  const payments = async (orderId: string) => (await getJson(`${sample.url}/orders/${orderId}/payments`)).body;

  it('POST /orders/:id/pay: 10 concurrent payments of one order run one at a time, and charge only what the balance allows', async () => {
    const orderId = await newOrder(1000);
    const results = await Promise.all(Array.from({ length: 10 }, () => pay(orderId, { amountCents: 300 })));

    // Without the lock all ten would read 1000 and charge: here three fit, and the other seven see the balance the third left.
    const charged = results.filter((result) => result.status === 201).map((result) => result.body);
    const refused = results.filter((result) => result.status !== 201);
    expect(charged).toHaveLength(3);
    expect(refused).toHaveLength(7);
    for (const result of refused)
      expect(result).toMatchObject({ status: 422, body: { message: `Order ${orderId} owes 100 cents; 300 is too much` } });

    const tokens = charged.map((payment) => payment.fencingToken as number).sort((a, b) => a - b);
    expect(new Set(tokens).size).toBe(3);
    expect(charged.sort((a, b) => a.fencingToken - b.fencingToken).map((payment) => [payment.chargedCents, payment.balanceCents])).toEqual([
      [300, 700],
      [300, 400],
      [300, 100],
    ]);
    const order = await payments(orderId);
    expect(order).toMatchObject({ orderId, totalCents: 1000, balanceCents: 100, status: 'open', fencingToken: tokens[2] });
    expect(order.payments.map((payment: any) => [payment.amountCents, payment.fencingToken])).toEqual(tokens.map((token) => [300, token]));

    // Without an amount, a payment settles what is owed; after that the order takes no more.
    const rest = await pay(orderId);
    expect(rest).toMatchObject({ status: 201, body: { chargedCents: 100, balanceCents: 0, status: 'paid' } });
    expect(rest.body.fencingToken).toBeGreaterThan(tokens[2]);
    expect(await pay(orderId, { amountCents: 1 })).toMatchObject({ status: 422, body: { message: `Order ${orderId} is already paid` } });
    expect(await payments(orderId)).toMatchObject({ balanceCents: 0, status: 'paid', fencingToken: rest.body.fencingToken });
  });

  it('a stale lock holder (its lease ran out while it stalled) cannot write over a later holder: the fencing token refuses it', async () => {
    const orderId = await newOrder(1000);
    // A holder that read the balance (1000), then stalled past its 200ms lease.
    const stale = await sample.app.get(LockService).acquire(`order:${orderId}`, { ttl: '200ms' });
    // A payment waits for the lock, gets it once the lease has run out, and charges 300.
    const paid = await pay(orderId, { amountCents: 300 });
    expect(paid).toMatchObject({ status: 201, body: { balanceCents: 700 } });
    expect(paid.body.fencingToken).toBeGreaterThan(stale.fencingToken);
    expect(stale.lost).toBe(true);

    // The stale holder wakes up and writes what it computed from its read: refused, so the payment of 300 is not undone.
    await expect(sample.app.get(PaymentsService).recordPayment(orderId, 500, 500, 'open', stale.fencingToken)).rejects.toThrow(
      `Order ${orderId} was written by a later lock holder; fencing token ${stale.fencingToken} is stale`,
    );
    expect(await payments(orderId)).toMatchObject({
      balanceCents: 700,
      fencingToken: paid.body.fencingToken,
      payments: [{ amountCents: 300 }],
    });
    await stale.release();
  });

  it('POST /orders/:id/pay with an Idempotency-Key charges once: retries replay the first answer byte for byte, another amount is a 422', async () => {
    const orderId = await newOrder(1000);
    const payOnce = async (key: string, amountCents: number) => {
      const response = await fetch(`${sample.url}/orders/${orderId}/pay`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ amountCents }),
      });
      return { status: response.status, replayed: response.headers.get('idempotent-replayed'), text: await response.text() };
    };
    const first = await payOnce(`${orderId}:first`, 300);
    expect(first).toMatchObject({ status: 201, replayed: null });
    expect(JSON.parse(first.text)).toMatchObject({ chargedCents: 300, balanceCents: 700 });
    // A client retrying after a timeout: the same answer, and no second charge.
    expect(await payOnce(`${orderId}:first`, 300)).toEqual({ ...first, replayed: 'true' });
    expect(await payOnce(`${orderId}:first`, 500)).toMatchObject({ status: 422 });
    // Two retries racing: one charges, the other is told to retry (409) or gets the replay.
    const racing = await Promise.all([payOnce(`${orderId}:second`, 200), payOnce(`${orderId}:second`, 200)]);
    expect(racing.filter((response) => response.status === 201 && response.replayed === null)).toHaveLength(1);
    for (const response of racing.filter((candidate) => candidate.replayed !== null || candidate.status !== 201))
      expect(response.status === 409 || response.replayed === 'true').toBe(true);
    const order = await payments(orderId);
    expect(order).toMatchObject({ balanceCents: 500 });
    expect(order.payments.map((payment: any) => payment.amountCents)).toEqual([300, 200]);
  });

  it('POST /orders/:id/pay: 400 for a bad amount, 404 for an unknown order', async () => {
    const orderId = await newOrder(500);
    expect((await pay(orderId, { amountCents: -5 })).status).toBe(400);
    expect((await pay(orderId, { amountCents: '5' })).status).toBe(400);
    expect((await pay(`${orderId}-unknown`, { amountCents: 5 })).status).toBe(404);
    expect((await getJson(`${sample.url}/orders/${orderId}-unknown/payments`)).status).toBe(404);
    expect((await postJson(`${sample.url}/orders/${orderId}/invoice`, { totalCents: 500 })).status).toBe(409);
  });

  it('POST /desks/:desk/tickets serves customers one at a time, in the order they came (a fair lock)', async () => {
    const desk = `d-${Date.now().toString(36)}`;
    const redis = sample.app.get(RedisConnections).get();
    const queue = `${sample.app.get(RedisKeys).prefix}lock-queue:{desk:${desk}}`;
    // The desk is busy while the customers come, each after the one before is in line.
    const busy = await sample.app.get(LockService).acquire(`desk:${desk}`, { fair: true });
    const customers = ['ann', 'bob', 'cy', 'dee', 'eve'];
    const tickets: Promise<{ status: number; body: any }>[] = [];
    for (const customer of customers) {
      tickets.push(postJson(`${sample.url}/desks/${desk}/tickets`, { customer }));
      await expect.poll(() => redis.zcard(queue), { timeout: 10_000, interval: 5 }).toBe(tickets.length);
    }
    await busy.release();
    const served = await Promise.all(tickets);
    expect(served.map(({ status }) => status)).toEqual(customers.map(() => 201));
    expect(served.map(({ body }) => [body.customer, body.position, body.fencingToken])).toEqual(
      customers.map((customer, i) => [customer, i + 1, busy.fencingToken + 1 + i]),
    );
    expect(await getJson(`${sample.url}/desks/${desk}/served`)).toEqual({ status: 200, body: { desk, served: customers } });
    expect(await redis.exists(queue)).toBe(0);
    expect((await postJson(`${sample.url}/desks/${desk}/tickets`, { customer: '' })).status).toBe(400);
    expect((await postJson(`${sample.url}/desks/${desk}/tickets`, {})).status).toBe(400);
  });

  it('POST /jobs/nightly-report/run: of two concurrent runs, exactly one runs and the other is skipped', async () => {
    const run = () => postJson(`${sample.url}/jobs/nightly-report/run`, {});
    const runs = await Promise.all([run(), run()]);
    expect(runs.map((result) => result.status)).toEqual([200, 200]);
    const ran = runs.filter((result) => result.body.ran);
    const skipped = runs.filter((result) => !result.body.ran);
    expect(ran).toHaveLength(1);
    expect(skipped).toHaveLength(1);
    expect(ran[0].body.report).toMatchObject({
      invoicedOrders: expect.any(Number),
      paidOrders: expect.any(Number),
      collectedCents: expect.any(Number),
      fencingToken: expect.any(Number),
    });
    expect(ran[0].body.report.invoicedOrders).toBeGreaterThanOrEqual(1);
    expect(skipped[0].body).toEqual({ ran: false, reason: 'skipped: another run holds the nightly-report lock' });

    // The lock is released when the run ends, so the next night's run is not skipped.
    const next = await run();
    expect(next.body.ran).toBe(true);
    expect(next.body.report.fencingToken).toBeGreaterThan(ran[0].body.report.fencingToken);
  });

  it('GET /jobs/nightly-report/runs: the @Cron job with @OncePerFire ran each fire once, recorded in Redis', async () => {
    const runs = async () => (await getJson(`${sample.url}/jobs/nightly-report/runs`)).body;
    await expect.poll(async () => (await runs()).counts.succeeded, { timeout: 10_000, interval: 200 }).toBeGreaterThanOrEqual(2);
    const { schedule, runs: history, counts } = await runs();
    expect(schedule).toBe('*/2 * * * * *');
    const fires = history.map((run: { fire: number }) => run.fire);
    expect(new Set(fires).size).toBe(fires.length);
    expect(fires.every((fire: number) => fire % 2_000 === 0)).toBe(true);
    // The job says catchUp: 'last': each start of a sample over this Redis (the suites above start
    // several, one after the other) runs the last fire missed since the one before it closed, and a
    // fire whose timer came while the app was still starting. Those runs carry catchUp: true; each
    // fire still ran once (above).
    for (const run of history) {
      expect(run).toEqual({
        fire: expect.any(Number),
        instance: expect.any(String),
        startedAt: expect.any(Number),
        durationMs: expect.any(Number),
        outcome: 'succeeded',
        ...(run.catchUp ? { catchUp: true } : {}),
      });
      expect(run.durationMs).toBeGreaterThanOrEqual(300); // the report's work
    }
    expect(counts).toMatchObject({ failed: 0, abandoned: 0, skippedRedisDown: 0 });
  });

  it('GET /jobs/order-stats: the one instance leads the poller, and only the leader polls', async () => {
    await expect
      .poll(async () => (await getJson(`${sample.url}/jobs/order-stats`)).body.polls, { timeout: 10_000 })
      .toBeGreaterThanOrEqual(1);
    const { body } = await getJson(`${sample.url}/jobs/order-stats`);
    expect(body).toEqual({ leader: true, polls: expect.any(Number), openOrders: expect.any(Number) });
  });

  it('PUT /config/:name rewrites a document entry by entry under the write lock: reads meanwhile never see half of each version', async () => {
    const name = `site-${Date.now().toString(36)}`;
    const version = (n: number) => Object.fromEntries(['a', 'b', 'c', 'd', 'e'].map((entry) => [`flags.${entry}`, `${entry}@${n}`]));
    const put = async (body: unknown): Promise<{ status: number; body: any }> => {
      const response = await fetch(`${sample.url}/config/${name}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: await response.json() };
    };
    expect((await getJson(`${sample.url}/config/${name}`)).status).toBe(404);
    expect(await put({ entries: version(1) })).toMatchObject({ status: 200, body: { name, version: 1, entries: version(1) } });

    // A rewrite (five entries, one at a time) with reads all along.
    const rewrite = put({ entries: version(2) });
    const reads = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        new Promise((resolve) => setTimeout(resolve, i * 5)).then(() => getJson(`${sample.url}/config/${name}`)),
      ),
    );
    const written = await rewrite;
    expect(written).toMatchObject({ status: 200, body: { version: 2, entries: version(2) } });
    for (const read of reads) {
      expect(read.status).toBe(200);
      // One version throughout: the entries of the version the document says it is.
      expect(read.body.entries).toEqual(version(read.body.version));
    }
    const tokens = reads.map((read) => read.body.fencingToken as number);
    expect(new Set(tokens).size).toBe(reads.length);
    // Reads that came after the rewrite have later fencing tokens, and see it.
    for (const read of reads.filter((read) => read.body.fencingToken > written.body.fencingToken)) expect(read.body.version).toBe(2);
    expect((await getJson(`${sample.url}/config/${name}`)).body).toMatchObject({ version: 2, entries: version(2) });

    expect((await put({ entries: {} })).status).toBe(400);
    expect((await put({ entries: { 'Bad Name': 'x' } })).status).toBe(400);
    expect((await put({ entries: { fine: 42 } })).status).toBe(400);
    expect((await getJson(`${sample.url}/config/Not_A_Name`)).status).toBe(404);
  });
});

describe('sample semaphore (PGlite)', () => {
  let sample: RunningSample;
  beforeAll(async () => {
    const { host, port } = inject('redis').standalone;
    sample = await startSample({ port: 0, redisUrl: `redis://${host}:${port}`, logger: false });
  });
  afterAll(() => sample.close());
  const exportSales = () => postJson(`${sample.url}/reports/sales/export`, {});

  it('POST /reports/sales/export: of 6 concurrent exports at most 2 run at once, every one runs, each with its own fencing token', async () => {
    const exports = await Promise.all(Array.from({ length: 6 }, exportSales));
    expect(exports.map((result) => result.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const running = exports.map((result) => result.body.running as number);
    expect(Math.max(...running)).toBe(SALES_EXPORT_PERMITS);
    expect(Math.min(...running)).toBeGreaterThanOrEqual(1);
    expect(new Set(exports.map((result) => result.body.fencingToken)).size).toBe(6);
    expect(exports[0].body).toMatchObject({ orders: expect.any(Number), collectedCents: expect.any(Number) });
  });

  it('POST /reports/sales/export answers 409 when no permit frees up within 5 s, and runs again once one is given back', async () => {
    const semaphore = sample.app.get(LockService).semaphore('sales-export', SALES_EXPORT_PERMITS);
    const held = await semaphore.acquire({ permits: SALES_EXPORT_PERMITS, ttl: '30s' });
    const busy = await exportSales();
    expect(busy).toMatchObject({ status: 409, body: { statusCode: 409, reason: 'timeout' } });
    await held.release();
    const next = await exportSales();
    expect(next).toMatchObject({ status: 200, body: { running: 1 } });
    expect(next.body.fencingToken).toBeGreaterThan(held.fencingToken);
  });
});

describe('sample leaderboards', () => {
  let sample: RunningSample;
  beforeAll(async () => {
    const { host, port } = inject('redis').standalone;
    sample = await startSample({ port: 0, redisUrl: `redis://${host}:${port}`, logger: false });
  });
  afterAll(() => sample.close());

  it('POST /games/scores keeps best scores, ranks ties first-come, and the top, around-me and pages agree', async () => {
    for (const [player, score] of [
      ['ada', 300],
      ['bob', 500],
      ['cy', 300],
      ['dee', 100],
    ] as const) {
      expect((await postJson(`${sample.url}/games/scores`, { player, score })).status).toBe(201);
    }
    // A lower score does not replace ada's best, nor her place before cy.
    expect(await postJson(`${sample.url}/games/scores`, { player: 'ada', score: 200 })).toEqual({
      status: 201,
      body: { allTime: { member: 'ada', score: 300, rank: 2 }, weekly: { member: 'ada', score: 300, rank: 2 } },
    });
    const board = [
      { member: 'bob', score: 500, rank: 1 },
      { member: 'ada', score: 300, rank: 2 },
      { member: 'cy', score: 300, rank: 3 },
      { member: 'dee', score: 100, rank: 4 },
    ];
    const top = await getJson(`${sample.url}/games/top`);
    expect(top.body).toEqual({ allTime: board, weekly: board, week: expect.stringMatching(/^w:\d{4}-\d\d-\d\d$/) });
    expect((await getJson(`${sample.url}/games/players/cy`)).body).toEqual({ me: board[2], around: board });
    expect((await getJson(`${sample.url}/games/leaderboard?page=2&size=2`)).body).toEqual({
      page: 2,
      size: 2,
      total: 4,
      entries: board.slice(2),
    });
  });

  it('answers 404 for a player without a score, and 400 for fractional scores and bad pages', async () => {
    expect((await getJson(`${sample.url}/games/players/nobody`)).status).toBe(404);
    expect(await postJson(`${sample.url}/games/scores`, { player: 'eve', score: 1.5 })).toMatchObject({
      status: 400,
      body: { message: expect.stringMatching(/^score: expected an integer/) },
    });
    expect((await postJson(`${sample.url}/games/scores`, { player: '', score: 1 })).status).toBe(400);
    expect((await getJson(`${sample.url}/games/leaderboard?page=0`)).status).toBe(400);
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
  it('builds, starts with its own Redis, serves /health and /dashboard, and stops cleanly on SIGINT', async () => {
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
      // Each request within 20 s, so that a hung one fails here, with the app's output, and not at the test's timeout.
      const within = (path: string) => fetch(`${url}${path}`, { signal: AbortSignal.timeout(20_000) });
      expect(((await (await within('/health')).json()) as { info: { redis: { status: string } } }).info.redis.status).toBe('up');
      // The dashboard's page and script, copied beside the build.
      for (const path of ['/dashboard', '/dashboard/assets/dashboard.js']) expect((await within(path)).status).toBe(200);

      // Ctrl-C reaches the whole process group (npm, and the app under it), as in a terminal.
      process.kill(-child.pid!, 'SIGINT');
      await expect.poll(() => output, { timeout: 20_000 }).toContain('Redis connection "default" closed');
      await expect
        .poll(
          () =>
            command(redisPort, 'PING').then(
              () => 'up',
              (error: Error) => error.message,
            ),
          { timeout: 10_000 },
        )
        .toMatch(/ECONNREFUSED/);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n--- output of npm start ---\n${output}`, { cause: error });
    } finally {
      // Whatever failed above, leave no app or redis-server behind.
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }, 180_000); // tsc builds the sample first: a minute or more on a busy 2-CPU machine
});
