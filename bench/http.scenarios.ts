import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import type { INestApplication } from '@nestjs/common';
import {
  listen,
  nestCacheManagerModule,
  platforms,
  redisThrottlerModule,
  routesModule,
  throttlerModule,
  type Platform,
} from './http.apps.js';
import { median, roundRatio, table } from './harness.js';

const autocannonBin = createRequire(import.meta.url).resolve('autocannon/autocannon.js');

/** Turns of each route: five, as the other groups take (the HTTP rows spread the most). */
export const HTTP_ROUNDS = 5;

/** One turn of a route: requests per second, and this process's CPU per request served (µs). */
interface Turn {
  rate: number;
  cpuPerRequestUs: number;
}

/**
 * One turn of a route under autocannon, run as its own process so it does not share the server's
 * event loop: requests per second, and the CPU this process (every app's server, and their Redis
 * clients) spent per request served, which the other processes on the machine (autocannon, Redis)
 * and autocannon's start do not move as they move requests per second.
 */
async function turn(url: string, seconds: number): Promise<Turn> {
  const cpuBefore = process.cpuUsage();
  const { stdout } = await promisify(execFile)(process.execPath, [autocannonBin, '-c', '64', '-d', String(seconds), '-j', url], {
    maxBuffer: 16 * 1024 * 1024,
  });
  const cpu = process.cpuUsage(cpuBefore);
  const result = JSON.parse(stdout) as { requests: { average: number; total: number }; non2xx: number };
  if (result.non2xx > 0) throw new Error(`${url} answered ${result.non2xx} non-2xx responses`);
  return { rate: result.requests.average, cpuPerRequestUs: (cpu.user + cpu.system) / result.requests.total };
}

/**
 * One measured route, for charts: its group (`http (express)`), req/s (the median of its rounds),
 * and the median over the rounds of its req/s over its platform's raw-GET route in the same round,
 * with the lowest and highest of those; and the same for the server's CPU per request, as the
 * raw-GET route's over the route's (above 1x: the route costs less than a raw GET does).
 */
export interface HttpRow {
  group: string;
  name: string;
  opsPerSecond: number;
  ratio: number;
  spread: [number, number];
  cpuPerRequestUs: number;
  cpuRatio: number;
  cpuSpread: [number, number];
}

/** The HTTP report: the table as text, and its rows. */
export interface HttpReport {
  text: string;
  rows: HttpRow[];
}

/** The routes, by name: which app serves them and at which path. The first is each platform's baseline, the last its plain route. */
const routes = [
  ['route doing a raw ioredis GET + JSON.parse (baseline)', 'ours', '/raw'],
  ['CacheInterceptor (Redis hit)', 'ours', '/interceptor'],
  ['@Cacheable service method (Redis hit)', 'ours', '/cacheable'],
  ['@nestjs/cache-manager CacheInterceptor + @keyv/redis', 'cacheManager', '/nest-cache-manager'],
  ['@nestjs/cache-manager CacheInterceptor + RedisKeyvStore', 'cacheManagerOurs', '/nest-cache-manager'],
  ['RateLimitGuard + @RateLimit (sliding window, by IP)', 'ours', '/rate-limited'],
  ['@nestjs/throttler ThrottlerGuard + @nest-lab Redis storage', 'throttler', '/throttled'],
  ['ThrottlerGuard + RedisThrottlerStorage', 'redisThrottler', '/throttled'],
  ['plain route, no Redis', 'ours', '/plain'],
] as const;

/**
 * Over HTTP (Nest on Express and on Fastify, autocannon, 64 connections): a route doing a raw
 * ioredis GET, routes cached with CacheInterceptor and @Cacheable (every request a Redis hit),
 * @nestjs/cache-manager's interceptor with @keyv/redis and on RedisKeyvStore, a route limited by RateLimitGuard (one
 * @RateLimit policy, by IP) and the same route under @nestjs/throttler's ThrottlerGuard with
 * @nest-lab/throttler-storage-redis and with RedisThrottlerStorage (all with a limit no run reaches), and a route that touches no
 * Redis. The same modules are started on each platform; each route is given as a ratio to its
 * platform's raw-GET route and plain route (the median of the rounds' ratios, each round's routes
 * against each other, with the spread of the first): a rate-limited route should stay at 0.9x or more of plain.
 * Each route's cost is also given as the CPU the server's process spent per request (every app runs
 * in this process, autocannon in its own), and as the raw-GET route's cost over it, round by round.
 */
export async function httpReport(url: string, seconds: number): Promise<HttpReport> {
  const ours = routesModule(url);
  const throttler = throttlerModule(url);
  const modules = {
    ours: ours.RoutesModule,
    cacheManager: nestCacheManagerModule(url),
    cacheManagerOurs: nestCacheManagerModule(url, true),
    throttler: throttler.ThrottlerRoutesModule,
    redisThrottler: redisThrottlerModule(url),
  };
  const apps: INestApplication[] = [];
  const targets: { platform: Platform; name: string; url: string }[] = [];
  for (const platform of Object.keys(platforms) as Platform[]) {
    const bases = new Map<string, string>();
    for (const [name, module] of Object.entries(modules)) {
      const { app, base } = await listen(module, platform);
      apps.push(app);
      bases.set(name, base);
    }
    for (const [name, app, path] of routes) targets.push({ platform, name, url: `${bases.get(app)}${path}` });
  }
  for (const { url: target } of targets) await fetch(target); // warm the caches
  // Each route runs in HTTP_ROUNDS turns of `seconds` each (an autocannon process takes a while to get
  // going: shorter turns spread widely), taking turns with the others, so a slow phase of the machine
  // weighs on all alike; each round's req/s is compared with its platform's routes of that round.
  const rounds: number[][] = targets.map(() => []);
  const costs: number[][] = targets.map(() => []);
  for (let round = 0; round < HTTP_ROUNDS; round++) {
    for (const [index, { url: target }] of targets.entries()) {
      const { rate, cpuPerRequestUs } = await turn(target, seconds);
      rounds[index].push(rate);
      costs[index].push(cpuPerRequestUs);
    }
  }
  await Promise.all(apps.map((app) => app.close()));
  await Promise.all([ours.close(), throttler.close()]);
  const indexOf = (platform: Platform, name: string) => targets.findIndex((t) => t.platform === platform && t.name === name);
  const rows = targets.map(({ platform, name }, index) => {
    const baseline = indexOf(platform, routes[0][0]);
    // Cost is lower-is-better: the baseline's over the route's, so that above 1x is better, as for req/s.
    const cost = roundRatio(costs[baseline], costs[index]);
    return {
      platform,
      name,
      opsPerSecond: median(rounds[index]),
      ...roundRatio(rounds[index], rounds[baseline]),
      vsPlain: roundRatio(rounds[index], rounds[indexOf(platform, routes[routes.length - 1][0])]).ratio,
      cpuPerRequestUs: median(costs[index]),
      cpuRatio: cost.ratio,
      cpuSpread: cost.spread,
    };
  });
  const spreadText = ([low, high]: [number, number]) => `${low.toFixed(2)}-${high.toFixed(2)}`;
  const text = table(
    ['platform', 'route', 'req/s', 'vs baseline', 'rounds', 'vs plain', 'CPU µs/req', 'CPU vs baseline', 'rounds'],
    rows.map((row, index) => {
      const isBaseline = index % routes.length === 0;
      return [
        row.platform,
        row.name,
        Math.round(row.opsPerSecond).toLocaleString('en-US'),
        `${row.ratio.toFixed(2)}x`,
        isBaseline ? '' : spreadText(row.spread),
        `${row.vsPlain.toFixed(2)}x`,
        row.cpuPerRequestUs.toFixed(1),
        `${row.cpuRatio.toFixed(2)}x`,
        isBaseline ? '' : spreadText(row.cpuSpread),
      ];
    }),
    2,
  );
  return {
    text,
    rows: rows.map(({ platform, name, opsPerSecond, ratio, spread, cpuPerRequestUs, cpuRatio, cpuSpread }) => ({
      group: `http (${platform})`,
      name,
      opsPerSecond,
      ratio,
      spread,
      cpuPerRequestUs,
      cpuRatio,
      cpuSpread,
    })),
  };
}
