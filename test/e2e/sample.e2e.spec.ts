import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { LockService } from '../../lib/index.js';
import { PaymentsService } from '../../sample/payments.service.js';
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

  it('answers unknown ids 404 from the Bloom filter: a flood of random ids never reaches the database', async () => {
    await expect.poll(async () => (await getJson(`${sample.url}/products-filter`)).body.built).toBe(true);
    expect((await getJson(`${sample.url}/products-filter`)).body).toMatchObject({ backend: 'bitmap', capacity: 100_000, errorRate: 0.001, items: 5 });
    const before = (await stats()).databaseQueries;
    const flood = await Promise.all(Array.from({ length: 300 }, (_, i) => getJson(`${sample.url}/products/random-${i}`)));
    expect(flood.every(({ status }) => status === 404)).toBe(true);
    // At 0.1% false positives, almost none of the 300 reach the database.
    expect((await stats()).databaseQueries - before).toBeLessThan(5);
  });

  it('POST /products adds the id to the filter after the insert, so the new product is found at once', async () => {
    expect((await getJson(`${sample.url}/products/new-1`)).status).toBe(404);
    expect(await postJson(`${sample.url}/products`, { id: 'new-1', name: 'Ruler', category: 'office', priceCents: 150 })).toEqual({ status: 201, body: { id: 'new-1', name: 'Ruler', category: 'office', priceCents: 150 } });
    expect(await getJson(`${sample.url}/products/new-1`)).toEqual({ status: 200, body: { id: 'new-1', name: 'Ruler', category: 'office', priceCents: 150 } });
    expect((await postJson(`${sample.url}/products`, { id: 'new-1', name: 'Ruler', category: 'office', priceCents: 150 })).status).toBe(409);
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

describe('sample sessions', () => {
  let sample: RunningSample;
  // Its own redis-server, so the outage test can stop it.
  beforeAll(async () => {
    sample = await startSample({ port: 0, logger: false });
  });
  afterAll(() => sample.close());

  // Cookies by hand, as a browser would: Set-Cookie in, Cookie out.
  const call = async (method: 'GET' | 'POST', path: string, { cookie, userAgent, body }: { cookie?: string; userAgent?: string; body?: unknown } = {}) => {
    const headers: Record<string, string> = {};
    if (cookie) headers.cookie = cookie;
    if (userAgent) headers['user-agent'] = userAgent;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${sample.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const setCookie = response.headers.getSetCookie();
    return { status: response.status, body: (await response.json()) as any, setCookie, cookie: setCookie[0]?.split(';')[0] };
  };
  const login = (username: string, options: { cookie?: string; userAgent?: string } = {}) => call('POST', '/session/login', { ...options, body: { username, password: 'demo' } });
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
    expect(visit.body).toEqual({ created: true, session: { userId: null, data: { visitedAt: isoDate, userAgent: 'laptop' }, createdAt: isoDate, lastSeenAt: isoDate, expiresAt: isoDate } });
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
      expect(session).toEqual({ handle: expect.stringMatching(/^[\w-]{43}$/), current: expect.any(Boolean), userAgent: expect.any(String), createdAt: isoDate, lastSeenAt: isoDate, expiresAt: isoDate });
    }
    const byDevice = (sessions: any[]) => Object.fromEntries(sessions.map((session) => [session.userAgent, { handle: session.handle, current: session.current }]));
    const laptopView = byDevice(fromLaptop.body);
    expect(laptopView).toEqual({ laptop: { handle: expect.any(String), current: true }, phone: { handle: expect.any(String), current: false } });
    const fromPhone = await list(phone);
    expect(byDevice(fromPhone.body)).toEqual({ laptop: { ...laptopView.laptop, current: false }, phone: { ...laptopView.phone, current: true } });
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

  it('401 without a session, 403 for lists on an anonymous one, 401 for a wrong password, 400 without a username', async () => {
    expect((await call('GET', '/session/profile')).status).toBe(401);
    expect((await call('GET', '/session/list')).status).toBe(401);
    expect((await call('POST', '/session/logout-others')).status).toBe(401);
    const anonymous = (await call('POST', '/session/visit')).cookie!;
    expect((await list(anonymous)).status).toBe(403);
    expect((await call('POST', '/session/logout-others', { cookie: anonymous })).status).toBe(403);
    const wrong = await call('POST', '/session/login', { cookie: anonymous, body: { username: user('carol'), password: 'guess' } });
    expect(wrong).toMatchObject({ status: 401, setCookie: [] });
    expect((await call('POST', '/session/login', { body: { password: 'demo' } })).status).toBe(400);
    // A failed login leaves the anonymous session as it was.
    expect((await profile(anonymous)).status).toBe(200);
    // A forged cookie is refused and cleared.
    const forged = await profile(`sid=${encodeURIComponent(`${'A'.repeat(43)}.forged`)}`);
    expect(forged.status).toBe(401);
    expect(forged.setCookie).toEqual([expect.stringMatching(cleared)]);
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
    for (const result of refused) expect(result).toMatchObject({ status: 422, body: { message: `Order ${orderId} owes 100 cents; 300 is too much` } });

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
    expect(await payments(orderId)).toMatchObject({ balanceCents: 700, fencingToken: paid.body.fencingToken, payments: [{ amountCents: 300 }] });
    await stale.release();
  });

  it('POST /orders/:id/pay: 400 for a bad amount, 404 for an unknown order', async () => {
    const orderId = await newOrder(500);
    expect((await pay(orderId, { amountCents: -5 })).status).toBe(400);
    expect((await pay(orderId, { amountCents: '5' })).status).toBe(400);
    expect((await pay(`${orderId}-unknown`, { amountCents: 5 })).status).toBe(404);
    expect((await getJson(`${sample.url}/orders/${orderId}-unknown/payments`)).status).toBe(404);
    expect((await postJson(`${sample.url}/orders/${orderId}/invoice`, { totalCents: 500 })).status).toBe(409);
  });

  it('POST /jobs/nightly-report/run: of two concurrent runs, exactly one runs and the other is skipped', async () => {
    const run = () => postJson(`${sample.url}/jobs/nightly-report/run`, {});
    const runs = await Promise.all([run(), run()]);
    expect(runs.map((result) => result.status)).toEqual([200, 200]);
    const ran = runs.filter((result) => result.body.ran);
    const skipped = runs.filter((result) => !result.body.ran);
    expect(ran).toHaveLength(1);
    expect(skipped).toHaveLength(1);
    expect(ran[0].body.report).toMatchObject({ invoicedOrders: expect.any(Number), paidOrders: expect.any(Number), collectedCents: expect.any(Number), fencingToken: expect.any(Number) });
    expect(ran[0].body.report.invoicedOrders).toBeGreaterThanOrEqual(1);
    expect(skipped[0].body).toEqual({ ran: false, reason: 'skipped: another run holds the nightly-report lock' });

    // The lock is released when the run ends, so the next night's run is not skipped.
    const next = await run();
    expect(next.body.ran).toBe(true);
    expect(next.body.report.fencingToken).toBeGreaterThan(ran[0].body.report.fencingToken);
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
    for (const [player, score] of [['ada', 300], ['bob', 500], ['cy', 300], ['dee', 100]] as const) {
      expect((await postJson(`${sample.url}/games/scores`, { player, score })).status).toBe(201);
    }
    // A lower score does not replace ada's best, nor her place before cy.
    expect(await postJson(`${sample.url}/games/scores`, { player: 'ada', score: 200 })).toEqual({
      status: 201,
      body: { allTime: { member: 'ada', score: 300, rank: 2 }, weekly: { member: 'ada', score: 300, rank: 2 } },
    });
    const board = [{ member: 'bob', score: 500, rank: 1 }, { member: 'ada', score: 300, rank: 2 }, { member: 'cy', score: 300, rank: 3 }, { member: 'dee', score: 100, rank: 4 }];
    const top = await getJson(`${sample.url}/games/top`);
    expect(top.body).toEqual({ allTime: board, weekly: board, week: expect.stringMatching(/^w:\d{4}-\d\d-\d\d$/) });
    expect((await getJson(`${sample.url}/games/players/cy`)).body).toEqual({ me: board[2], around: board });
    expect((await getJson(`${sample.url}/games/leaderboard?page=2&size=2`)).body).toEqual({ page: 2, size: 2, total: 4, entries: board.slice(2) });
  });

  it('answers 404 for a player without a score, and 400 for fractional scores and bad pages', async () => {
    expect((await getJson(`${sample.url}/games/players/nobody`)).status).toBe(404);
    expect(await postJson(`${sample.url}/games/scores`, { player: 'eve', score: 1.5 })).toMatchObject({ status: 400, body: { message: expect.stringMatching(/^score: expected an integer/) } });
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
