import { mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisKeys } from '../../lib/index.js';
import { startSample, type RunningSample } from '../../sample/sample.js';
import { launchChromium, pngSize } from '../support/chromium.js';
import { sleep } from '../support/redis-server.js';

/** Where the test leaves its screenshot (gitignored; docs/dashboard.png is one of them, committed by hand). */
const ARTIFACTS = new URL('../../.artifacts/', import.meta.url);
const SCREENSHOT = fileURLToPath(new URL('dashboard.png', ARTIFACTS));

const PLAYERS = ['ada', 'bob', 'cy', 'dee', 'eve', 'fay', 'gus', 'hal', 'ivy', 'jo', 'kim', 'lu', 'max', 'ned', 'oz', 'pia'];

/** The samples of Prometheus text: `sum(name, labels)` adds those of `name` whose labels match. */
async function scrape(url: string): Promise<(name: string, labels?: Record<string, string>) => number> {
  const samples = (await (await fetch(`${url}/metrics`)).text())
    .split('\n')
    .map((line) => /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line))
    .filter((match) => match !== null)
    .map(([, name, labels = '', value]) => ({
      name,
      labels: Object.fromEntries([...labels.matchAll(/(\w+)="([^"]*)"/g)].map(([, label, text]) => [label, text])),
      value: Number(value),
    }));
  return (name, labels = {}) =>
    samples
      .filter((sample) => sample.name === name && Object.entries(labels).every(([label, text]) => sample.labels[label] === text))
      .reduce((sum, sample) => sum + sample.value, 0);
}

describe('sample dashboard (GET /dashboard, in Chromium)', () => {
  let sample: RunningSample;
  let browser: Browser;
  let redis: Redis;
  beforeAll(async () => {
    // Its own redis-server: the arcade board, the limits and INFO are this suite's alone.
    sample = await startSample({ port: 0, logger: false });
    redis = new Redis({ host: sample.ownRedis!.host, port: sample.ownRedis!.port });
  });
  afterAll(async () => {
    await browser?.close();
    redis?.disconnect();
    await sample?.close();
  });

  const getJson = async (path: string): Promise<any> => (await fetch(`${sample.url}${path}`)).json();
  const post = (path: string, body: unknown) =>
    fetch(`${sample.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('serves the page, its script and styles and uPlot (from node_modules) itself, and no other asset', async () => {
    const page = await fetch(`${sample.url}/dashboard`);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const links = [...(await page.text()).matchAll(/(?:src|href)="([^"]+)"/g)].map(([, link]) => link).filter((link) => link !== 'data:,');
    expect(links.sort()).toEqual(
      ['dashboard.css', 'dashboard.js', 'uPlot.iife.min.js', 'uPlot.min.css'].map((name) => `/dashboard/assets/${name}`),
    );
    const uplot = await fetch(`${sample.url}/dashboard/assets/uPlot.iife.min.js`);
    expect(uplot.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await uplot.text()).toContain('uPlot');
    expect((await fetch(`${sample.url}/dashboard/assets/dashboard.css`)).headers.get('content-type')).toBe('text/css; charset=utf-8');
    for (const name of ['index.html', 'constructor', '..%2Fdashboard.service.ts']) {
      expect((await fetch(`${sample.url}/dashboard/assets/${name}`)).status).toBe(404);
    }
  });

  it('GET /dashboard/stream sends an update a second over Server-Sent Events', async () => {
    const controller = new AbortController();
    const response = await fetch(`${sample.url}/dashboard/stream`, { signal: controller.signal });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = response.body!.getReader();
    let text = '';
    while ((text.match(/^data: /gm) ?? []).length < 3) text += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    const updates = [...text.matchAll(/^data: (.*)$/gm)].map(([, json]) => JSON.parse(json));
    expect(Object.keys(updates[0]).sort()).toEqual([
      'at',
      'cache',
      'leaderboard',
      'locks',
      'perSecond',
      'queue',
      'rateLimit',
      'redis',
      'stream',
    ]);
    for (const [before, after] of [updates.slice(0, 2), updates.slice(1, 3)]) {
      expect(after.at - before.at).toBeGreaterThan(700);
      expect(after.at - before.at).toBeLessThan(1600);
    }
    expect(updates[0].redis.usedMemoryBytes).toBeGreaterThan(100_000);
  });

  /** Orders, emails, scores, searches (until limited), cached reads and lock waits, over a few seconds so the charts move. */
  async function driveTraffic(): Promise<{ searchStatuses: number[] }> {
    const searchStatuses: number[] = [];
    expect((await post('/orders/o-dashboard/invoice', { totalCents: 100_000 })).status).toBe(201);
    for (let round = 0; round < 8; round++) {
      const searches = [0, 1].map(() => fetch(`${sample.url}/search?q=ook`).then((response) => searchStatuses.push(response.status)));
      await Promise.all([
        ...['1', '2', '3', '1', '2', '1'].map((id) => fetch(`${sample.url}/products/${id}`)),
        ...searches,
        ...PLAYERS.slice(round * 2, round * 2 + 2).map((player, i) =>
          post('/games/scores', { player, score: 1000 + (((round * 2 + i) * 379) % 2000) }),
        ),
        post('/queue/emails', { to: `user${round}@example.com` }),
        post('/queue/emails', { to: `later${round}@example.com`, delayMs: 60_000 }),
        post('/orders', { sku: round === 2 ? 'poison' : 'book', quantity: 1 }),
        ...[0, 1, 2].map(() => post('/orders/o-dashboard/pay', { amountCents: 100 })),
        ...(round === 4 ? [0, 1].map(() => post('/jobs/nightly-report/run', {})) : []),
      ]);
      await sleep(500);
    }
    return { searchStatuses };
  }

  /** The numbers the page shows (its elements' data-value), and the top-10 names. */
  async function shown(page: Page): Promise<{ numbers: Record<string, number | null>; players: string[] }> {
    const attributes = (selector: string, ...names: string[]) =>
      page
        .locator(selector)
        .evaluateAll((elements, names) => elements.map((element) => names.map((name) => element.getAttribute(name))), names);
    const values = await attributes('[data-metric][data-value]', 'data-metric', 'data-value');
    return {
      numbers: Object.fromEntries(values.map(([metric, value]) => [metric!, value === '' ? null : Number(value)])),
      players: (await attributes('[data-metric="leaderboard"] li', 'data-player')).map(([player]) => player!),
    };
  }

  /** What the sample's JSON routes, /metrics and Redis say the same numbers are. */
  async function expected(): Promise<{ numbers: Record<string, number | null>; players: string[] }> {
    const [cache, queue, top, metric, groups] = await Promise.all([
      getJson('/cache/stats'),
      getJson('/queue/emails'),
      getJson('/games/top'),
      scrape(sample.url),
      redis.xinfo('GROUPS', sample.app.get(RedisKeys).tagged(['stream', 'orders'])) as Promise<unknown[][]>,
    ]);
    const fulfilment = groups.map((fields) =>
      Object.fromEntries(Array.from({ length: fields.length / 2 }, (_, i) => fields.slice(i * 2, i * 2 + 2))),
    );
    const group = fulfilment.find((fields) => fields.name === 'fulfilment')!;
    const decisions = (outcome: string) => metric('redis_patterns_ratelimit_decisions_total', { outcome });
    const acquired = metric('redis_patterns_lock_acquisitions_total', { outcome: 'acquired' });
    const waits = metric('redis_patterns_lock_wait_seconds_count');
    return {
      numbers: {
        'cache-hit-ratio': cache.hitRatio,
        'cache-hits': cache.l1.hits + cache.redis.hits,
        'cache-lookups': cache.l1.hits + cache.redis.hits + cache.redis.misses,
        'ratelimit-limited': decisions('limited'),
        'ratelimit-allowed': decisions('allowed'),
        'ratelimit-unchecked': decisions('unchecked'),
        'ratelimit-unavailable': decisions('unavailable'),
        'locks-acquired': acquired,
        'locks-busy': metric('redis_patterns_lock_acquisitions_total') - acquired,
        'locks-wait-mean': (metric('redis_patterns_lock_wait_seconds_sum') / waits) * 1000,
        'queue-waiting': queue.waiting,
        'queue-active': queue.active,
        'queue-delayed': queue.delayed,
        'queue-dead': queue.dead,
        'queue-completed': metric('redis_patterns_queue_jobs_total', { queue: 'emails', outcome: 'completed' }),
        'stream-pending': group.pending,
        'stream-lag': group.lag,
        'stream-handled': metric('redis_patterns_stream_entries_total', { stream: 'orders', outcome: 'handled' }),
        'stream-dead-lettered': metric('redis_patterns_stream_entries_total', { stream: 'orders', outcome: 'dead-lettered' }),
      },
      players: top.allTime.map((entry: { member: string }) => entry.member),
    };
  }

  it('shows numbers that change with the traffic and agree with /metrics, the JSON routes and Redis; charts update without a reload', async () => {
    // Fails, saying how to install it, when there is no Chromium: CI installs it (.ci/run).
    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1440, height: 720 } });
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => message.type() === 'error' && problems.push(message.text()));
    page.on('request', (request) => requests.push(request.url()));
    await page.goto(`${sample.url}/dashboard`);
    await expect.poll(() => page.locator('[data-metric="status"]').getAttribute('data-updates').then(Number)).toBeGreaterThan(0);
    await page.evaluate(() => ((globalThis as any).sameDocument = true));
    const before = await shown(page);
    expect(before.numbers).toMatchObject({ 'cache-lookups': 0, 'ratelimit-limited': 0, 'stream-handled': 0 });
    // Before any traffic, the one lock taken is the order-stats poller's election (once it has run).
    expect([0, 1]).toContain(before.numbers['locks-acquired']);
    expect(before.players).toEqual([]);
    const quietChart = await page.locator('[data-chart="ratelimit"]').screenshot();

    const { searchStatuses } = await driveTraffic();
    expect(searchStatuses).toContain(429);
    await expect.poll(async () => (await shown(page)).numbers['ratelimit-limited'], { timeout: 5_000 }).toBeGreaterThan(0);
    await expect.poll(async () => (await shown(page)).players.length, { timeout: 5_000 }).toBe(10);

    // Once the traffic has settled (the poison order is dead-lettered after 3 deliveries, a second apart)...
    await expect
      .poll(async () => (await scrape(sample.url))('redis_patterns_stream_entries_total', { outcome: 'dead-lettered' }), {
        timeout: 15_000,
      })
      .toBe(1);
    // ...the page agrees within an update or two.
    await vi.waitFor(
      async () => {
        const [now, truth] = [await shown(page), await expected()];
        expect(now.players).toEqual(truth.players);
        const { 'locks-wait-mean': mean, ...numbers } = truth.numbers;
        expect(now.numbers).toMatchObject(numbers);
        expect(now.numbers['locks-wait-mean']).toBeCloseTo(mean!, 3);
      },
      { timeout: 15_000, interval: 250 },
    );
    const { numbers } = await shown(page);
    expect(numbers).toMatchObject({ 'queue-delayed': 8, 'stream-dead-lettered': 1, 'stream-pending': 0, 'locks-busy': 1 });
    expect(numbers['cache-hit-ratio']).toBeGreaterThan(0.5);
    expect(numbers['locks-acquired']).toBeGreaterThanOrEqual(25);
    expect([1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000]).toContain(numbers['locks-wait-p95']);
    expect(numbers['redis-ops']).toBeGreaterThan(0);
    const usedMemory = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);
    expect(numbers['redis-memory']).toBeGreaterThan(usedMemory * 0.5);
    expect(numbers['redis-memory']).toBeLessThan(usedMemory * 2);

    // Six charts drawn, changed by the traffic, in the same document: no reload.
    expect(await page.locator('[data-chart] canvas').count()).toBe(6);
    expect((await page.locator('[data-chart="ratelimit"]').screenshot()).equals(quietChart)).toBe(false);
    expect(await page.evaluate(() => (globalThis as any).sameDocument)).toBe(true);
    expect(requests.filter((url) => !url.startsWith(`${sample.url}/`))).toEqual([]);
    expect(problems).toEqual([]);

    await sleep(1_000); // the last update's highlight fades
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    const png = pngSize(readFileSync(SCREENSHOT));
    expect(png.width).toBe(1440);
    expect(png.height).toBeGreaterThanOrEqual(600);
    expect(png.bytes).toBeGreaterThan(50_000);
    await page.close();
  }, 60_000);
});
