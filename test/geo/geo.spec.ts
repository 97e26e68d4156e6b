import { Injectable, Logger, type INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  GeoIndex,
  GeoService,
  InjectGeoIndex,
  InvalidOptionError,
  MalformedTextError,
  RedisConnections,
  RedisKeys,
  RedisUnavailableError,
  type GeoCoordinates,
  type GeoIndexOptions,
  type GeoMatch,
  type GeoPoint,
  type GeoSearchOptions,
} from '../../lib/index.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';

/** The radius of the sphere Redis computes distances on, in metres. */
const EARTH_RADIUS = 6372797.560856;
const rad = (degrees: number) => (degrees * Math.PI) / 180;

/** The haversine distance in metres, as Redis computes it. */
function haversine(a: GeoCoordinates, b: GeoCoordinates): number {
  const u = Math.sin((rad(b.latitude) - rad(a.latitude)) / 2);
  const v = Math.sin((rad(b.longitude) - rad(a.longitude)) / 2);
  return 2 * EARTH_RADIUS * Math.asin(Math.sqrt(u * u + Math.cos(rad(a.latitude)) * Math.cos(rad(b.latitude)) * v * v));
}

/** Whether `point` is in the box of `width` x `height` metres centred on `center`, by Redis's rule (geohashGetDistanceIfInRectangle). */
function inBox(center: GeoCoordinates, point: GeoCoordinates, width: number, height: number): boolean {
  const north = EARTH_RADIUS * Math.abs(rad(point.latitude) - rad(center.latitude));
  const east = haversine({ longitude: center.longitude, latitude: point.latitude }, point);
  return north <= height / 2 && east <= width / 2;
}

/** A deterministic pseudo-random generator (mulberry32), so every run searches the same points. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const CITIES: Record<string, GeoCoordinates> = {
  paris: { longitude: 2.3522, latitude: 48.8566 },
  london: { longitude: -0.1276, latitude: 51.5072 },
  'new-york': { longitude: -74.006, latitude: 40.7128 },
  tokyo: { longitude: 139.6917, latitude: 35.6895 },
  sydney: { longitude: 151.2093, latitude: -33.8688 },
  'sao-paulo': { longitude: -46.6333, latitude: -23.5505 },
  'cape-town': { longitude: 18.4241, latitude: -33.9249 },
  reykjavik: { longitude: -21.9426, latitude: 64.1466 },
};

const PARIS = CITIES.paris;
/** 500 points within about 40 km of Paris, from seed 42. */
const POINTS: GeoPoint[] = (() => {
  const random = seeded(42);
  return Array.from({ length: 500 }, (_, i) => ({
    member: `p-${i}`,
    longitude: PARIS.longitude + (random() - 0.5) * 1.1,
    latitude: PARIS.latitude + (random() - 0.5) * 0.7,
  }));
})();

let indexes = 0;
/** An index name no other test uses. */
const fresh = () => `index-${++indexes}`;

describe.each(topologies)('GeoService on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  let app: INestApplicationContext;
  let geo: GeoService;
  /** The index of the 500 points, and their places as Redis stored them (the brute force reads those). */
  let points: GeoIndex;
  let stored: Map<string, GeoCoordinates>;
  beforeAll(async () => {
    app = await startContext({ connection: connection(), keyPrefix });
    geo = app.get(GeoService);
    points = geo.index(fresh());
    expect(await points.addMany(POINTS)).toBe(POINTS.length);
    const places = await Promise.all(POINTS.map(({ member }) => points.position(member)));
    stored = new Map(POINTS.map(({ member }, i) => [member, places[i]!]));
  });
  afterAll(() => app.close());

  /** The members within `radius` metres of `center`, nearest first, by brute force. */
  const bruteRadius = (center: GeoCoordinates, radius: number) =>
    [...stored]
      .map(([member, place]) => ({ member, distance: haversine(center, place) }))
      .filter(({ distance }) => distance <= radius)
      .sort((a, b) => a.distance - b.distance);

  it('measures distances between cities within 0.5% of the haversine distance, in every unit', async () => {
    const cities = geo.index(fresh());
    for (const [name, place] of Object.entries(CITIES)) expect(await cities.add(name, place)).toBe(true);
    const names = Object.keys(CITIES);
    for (const a of names) {
      for (const b of names) {
        if (a === b) continue;
        const expected = haversine(CITIES[a], CITIES[b]);
        const metres = (await cities.distance(a, b))!;
        expect(Math.abs(metres - expected) / expected, `${a} to ${b}`).toBeLessThan(0.005);
        expect((await cities.distance(a, b, 'km'))!).toBeCloseTo(metres / 1000, 2);
        expect((await cities.distance(a, b, 'mi'))!).toBeCloseTo(metres / 1609.34, 2);
        expect((await cities.distance(a, b, 'ft'))!).toBeCloseTo(metres / 0.3048, -1);
      }
    }
    // Paris to London is about 344 km, to Sydney about 16,950 km.
    expect(Math.round((await cities.distance('paris', 'london', 'km'))!)).toBe(344);
    expect(Math.round((await cities.distance('paris', 'sydney', 'km'))! / 100)).toBe(170);
    expect(await cities.distance('paris', 'atlantis')).toBeNull();
  });

  it('keeps positions within 1e-5 degrees, and answers null for a member not in the index', async () => {
    for (const point of POINTS) {
      const place = stored.get(point.member)!;
      expect(Math.abs(place.longitude - point.longitude)).toBeLessThan(1e-5);
      expect(Math.abs(place.latitude - point.latitude)).toBeLessThan(1e-5);
    }
    expect(await points.position('nobody')).toBeNull();
    expect(await points.count()).toBe(POINTS.length);
  });

  it.each([
    ['a place', 1, 'km'],
    ['a place', 12_000, 'm'],
    ['a place', 25, 'km'],
    ['a place', 10, 'mi'],
  ] as const)('finds the same members as a brute force within a radius from %s (%d %s)', async (_from, radius, unit) => {
    const metres = radius * { m: 1, km: 1000, mi: 1609.34 }[unit];
    const expected = bruteRadius(PARIS, metres).map(({ member }) => member);
    const found = await points.near(PARIS, { radius, unit });
    expect(found.map(({ member }) => member).sort()).toEqual([...expected].sort());
    if (metres >= 10_000) expect(expected.length).toBeGreaterThan(20);
  });

  it('searches from a member as from its place, and finds nothing from a member not in the index', async () => {
    const center = stored.get('p-7')!;
    const fromMember = await points.near({ member: 'p-7' }, { radius: 8, unit: 'km', withDistance: true });
    expect(fromMember.map(({ member }) => member)).toEqual(bruteRadius(center, 8_000).map(({ member }) => member));
    expect(fromMember[0]).toEqual({ member: 'p-7', distance: 0 });
    expect(await points.near({ member: 'nobody' }, { radius: 8, unit: 'km' })).toEqual([]);
    expect(await geo.index(fresh()).near({ member: 'nobody' }, { radius: 8 })).toEqual([]);
  });

  it.each([
    [10_000, 10_000],
    [30_000, 8_000],
    [4_000, 40_000],
  ])('finds the same members as a brute force in a box of %d x %d m', async (width, height) => {
    const expected = [...stored].filter(([, place]) => inBox(PARIS, place, width, height)).map(([member]) => member);
    const found = await points.near(PARIS, { box: { width: width / 1000, height: height / 1000 }, unit: 'km' });
    expect(found.map(({ member }) => member).sort()).toEqual(expected.sort());
    expect(expected.length).toBeGreaterThan(5);
  });

  it('sorts nearest first by default, farthest first with desc, and limits to the nearest N', async () => {
    const expected = bruteRadius(PARIS, 20_000);
    const distances = (matches: GeoMatch[]) => matches.map(({ distance }) => distance!);
    const asc = await points.near(PARIS, { radius: 20, unit: 'km', withDistance: true });
    expect(asc.map(({ member }) => member)).toEqual(expected.map(({ member }) => member));
    expect(distances(asc)).toEqual([...distances(asc)].sort((a, b) => a - b));
    const desc = await points.near(PARIS, { radius: 20, unit: 'km', withDistance: true, sort: 'desc' });
    expect(desc.map(({ member }) => member)).toEqual(asc.map(({ member }) => member).reverse());
    expect(distances(desc)).toEqual([...distances(desc)].sort((a, b) => b - a));

    const nearest = await points.near(PARIS, { radius: 20, unit: 'km', limit: 10 });
    expect(nearest.map(({ member }) => member)).toEqual(expected.slice(0, 10).map(({ member }) => member));
    const farthest = await points.near(PARIS, { radius: 20, unit: 'km', limit: 3, sort: 'desc' });
    expect(farthest.map(({ member }) => member)).toEqual(
      expected
        .slice(-3)
        .map(({ member }) => member)
        .reverse(),
    );
    expect(await points.near(PARIS, { radius: 20, unit: 'km', limit: 10_000 })).toHaveLength(expected.length);
  });

  it('gives distances in the unit asked for, and the coordinates Redis stored', async () => {
    const found = await points.near(PARIS, { radius: 6, unit: 'mi', withDistance: true, withCoordinates: true });
    expect(found.length).toBeGreaterThan(10);
    for (const { member, distance, longitude, latitude } of found) {
      const place = stored.get(member)!;
      expect(distance).toBeCloseTo(haversine(PARIS, place) / 1609.34, 3);
      expect(longitude).toBeCloseTo(place.longitude, 9);
      expect(latitude).toBeCloseTo(place.latitude, 9);
    }
    const onlyCoordinates = await points.near(PARIS, { radius: 6, unit: 'mi', withCoordinates: true, limit: 1 });
    expect(Object.keys(onlyCoordinates[0]).sort()).toEqual(['latitude', 'longitude', 'member']);
    const bare = await points.near(PARIS, { radius: 6, unit: 'mi', limit: 1 });
    expect(bare).toEqual([{ member: found[0].member }]);
  });

  it('moves a member added again (false), and removes members', async () => {
    const index = geo.index(fresh());
    expect(await index.add('shop', CITIES.paris)).toBe(true);
    expect(await index.add('shop', CITIES.london)).toBe(false);
    const place = (await index.position('shop'))!;
    expect(Math.abs(place.longitude - CITIES.london.longitude)).toBeLessThan(1e-5);
    expect(Math.abs(place.latitude - CITIES.london.latitude)).toBeLessThan(1e-5);
    expect(
      await index.addMany([
        { member: 'a', ...CITIES.tokyo },
        { member: 'shop', ...CITIES.sydney },
        { member: 'b', ...CITIES.tokyo },
      ]),
    ).toBe(2);
    expect(await index.count()).toBe(3);
    expect(await index.remove('a', 'nobody', 'b')).toBe(2);
    expect(await index.remove('a')).toBe(0);
    expect(await index.remove()).toBe(0);
    expect(await index.position('a')).toBeNull();
    expect(await index.near(CITIES.tokyo, { radius: 100, unit: 'km' })).toEqual([]);
    expect((await index.near(CITIES.sydney, { radius: 1, unit: 'km' })).map(({ member }) => member)).toEqual(['shop']);
    await index.clear();
    expect(await index.count()).toBe(0);
  });

  it('adds more than one chunk of 1,000 members', async () => {
    const index = geo.index(fresh());
    const random = seeded(7);
    const many = function* () {
      for (let i = 0; i < 2_500; i++) yield { member: `m-${i}`, longitude: random() * 360 - 180, latitude: random() * 170 - 85 };
    };
    expect(await index.addMany(many())).toBe(2_500);
    expect(await index.count()).toBe(2_500);
    expect(await index.addMany([])).toBe(0);
  });

  it('keeps each index on one key of its own, tagged {geo:<name>}', async () => {
    const index = geo.index('stores');
    await index.add('s-1', PARIS);
    const redis = app.get(RedisConnections).get();
    const key = app.get(RedisKeys).tagged(['geo', 'stores']);
    expect(key).toBe(`${keyPrefix}{geo:stores}`);
    expect(await redis.type(key)).toBe('zset');
    expect(await redis.zcard(key)).toBe(1);
  });
});

describe('GeoService arguments', () => {
  let app: INestApplicationContext;
  let index: GeoIndex;
  let zcard: () => Promise<number>;
  beforeAll(async () => {
    app = await startContext({ connection: topologies[0].connection() });
    index = app.get(GeoService).index('checked');
    await index.add('kept', PARIS);
    const redis = app.get(RedisConnections).get();
    const key = app.get(RedisKeys).tagged(['geo', 'checked']);
    zcard = () => redis.zcard(key);
  });
  afterAll(() => app.close());

  const search = (options: Partial<GeoSearchOptions>) => index.near(PARIS, options as GeoSearchOptions);
  it.each([
    ['longitude 181', () => index.add('x', { longitude: 181, latitude: 0 }), 'longitude'],
    ['longitude -180.5', () => index.add('x', { longitude: -180.5, latitude: 0 }), 'longitude'],
    ['latitude 86', () => index.add('x', { longitude: 0, latitude: 86 }), 'latitude'],
    ['latitude -85.06', () => index.add('x', { longitude: 0, latitude: -85.06 }), 'latitude'],
    ['longitude NaN', () => index.add('x', { longitude: NaN, latitude: 0 }), 'longitude'],
    ['latitude Infinity', () => index.add('x', { longitude: 0, latitude: Infinity }), 'latitude'],
    ['a latitude as a string', () => index.add('x', { longitude: 0, latitude: '1' as unknown as number }), 'latitude'],
    ['an empty member', () => index.add('', PARIS), 'member'],
    ['a member of 513 bytes', () => index.add('é'.repeat(256) + 'x', PARIS), 'member'],
    ['a number as member', () => index.add(5 as unknown as string, PARIS), 'member'],
    [
      'a bad point after a good one',
      () =>
        index.addMany([
          { member: 'fine', ...PARIS },
          { member: 'bad', longitude: 0, latitude: 86 },
        ]),
      'points[1].latitude',
    ],
    ['an empty member among points', () => index.addMany([{ member: '', ...PARIS }]), 'points[0].member'],
    ['an empty member to remove', () => index.remove('kept', ''), 'members[1]'],
    ['both radius and box', () => search({ radius: 1, box: { width: 1, height: 1 } }), 'radius'],
    ['neither radius nor box', () => search({}), 'radius'],
    ['a bad unit', () => search({ radius: 1, unit: 'yd' as 'm' }), 'unit'],
    ['a negative radius', () => search({ radius: -1 }), 'radius'],
    ['a box of width 0', () => search({ box: { width: 0, height: 1 } }), 'box.width'],
    ['a box of height NaN', () => search({ box: { width: 1, height: NaN } }), 'box.height'],
    ['a limit of 0', () => search({ radius: 1, limit: 0 }), 'limit'],
    ['a limit of 1.5', () => search({ radius: 1, limit: 1.5 }), 'limit'],
    ['a bad sort', () => search({ radius: 1, sort: 'up' as 'asc' }), 'sort'],
    ['an unknown option', () => search({ radius: 1, radious: 2 } as Partial<GeoSearchOptions>), 'options.radious'],
    ['a center latitude of 86', () => index.near({ longitude: 0, latitude: 86 }, { radius: 1 }), 'center.latitude'],
    ['an empty center member', () => index.near({ member: '' }, { radius: 1 }), 'center.member'],
    ['a bad distance unit', () => index.distance('kept', 'kept', 'yd' as 'm'), 'unit'],
    ['an empty member to measure from', () => index.distance('', 'kept'), 'a'],
  ])('reject %s with an InvalidOptionError naming the argument, writing nothing', async (_case, call, argument) => {
    const before = await zcard();
    const error: unknown = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as InvalidOptionError).option).toBe(argument);
    expect((error as Error).message).toContain(`Invalid option "${argument}"`);
    expect(await zcard()).toBe(before);
  });

  it('rejects a member with a lone surrogate as malformed text (400), and bad index names and options', async () => {
    await expect(index.add('x\ud800', PARIS)).rejects.toBeInstanceOf(MalformedTextError);
    expect(await zcard()).toBe(1);
    const geo = app.get(GeoService);
    expect(() => geo.index('')).toThrow('Invalid option "name"');
    expect(() => geo.index('n'.repeat(129))).toThrow('Invalid option "name"');
    expect(() => geo.index('ok', { colour: 'red' } as unknown as GeoIndexOptions)).toThrow('Invalid option "geo index "ok".colour"');
  });

  @Injectable()
  class StoreFinder {
    constructor(@InjectGeoIndex('stores') readonly stores: GeoIndex) {}
  }

  it('injects indexes declared under geo in the module options, and fails at startup on bad ones', async () => {
    const keyPrefix = uniquePrefix();
    const withStores = await startContext(
      { connection: topologies[0].connection(), keyPrefix, geo: { stores: {} } },
      { providers: [StoreFinder] },
    );
    const { stores } = withStores.get(StoreFinder);
    expect(stores).toBeInstanceOf(GeoIndex);
    expect(stores.name).toBe('stores');
    await stores.add('s-1', PARIS);
    expect(await withStores.get(GeoService).index('stores').count()).toBe(1);
    expect(await withStores.get(RedisConnections).get().zcard(`${keyPrefix}{geo:stores}`)).toBe(1);
    await withStores.close();
    await expect(
      startContext(
        { connection: topologies[0].connection(), geo: { stores: { colour: 'red' } as unknown as GeoIndexOptions } },
        { providers: [StoreFinder] },
      ),
    ).rejects.toThrow('"geo index "stores".colour"');
  });
});

describe('GeoService while Redis is down', () => {
  const own = ownRedisServer();

  it('rejects reads and writes with RedisUnavailableError (503), logged once, and works again once Redis is back', async () => {
    const app = await startContext({
      connection: own.server.address,
      commandTimeout: '300ms',
      reconnect: { minDelay: '20ms', maxDelay: '100ms' },
      geo: { stores: {} },
    });
    const stores = app.get(GeoService).index('stores');
    await stores.add('s-1', PARIS);
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      await own.server.stop();
      const calls = [
        stores.add('s-2', PARIS),
        stores.addMany([{ member: 's-3', ...PARIS }]),
        stores.position('s-1'),
        stores.distance('s-1', 's-2'),
        stores.near(PARIS, { radius: 1 }),
        stores.near({ member: 's-1' }, { radius: 1 }),
        stores.remove('s-1'),
        stores.count(),
      ];
      for (const outcome of await Promise.allSettled(calls)) {
        expect(outcome.status).toBe('rejected');
        const reason = (outcome as PromiseRejectedResult).reason as RedisUnavailableError;
        expect(reason).toBeInstanceOf(RedisUnavailableError);
        expect(reason.getStatus()).toBe(503);
        expect(reason.message).toMatch(/^Redis is unavailable to geo indexes \(/);
      }
      expect(warn.mock.calls.filter(([message]) => String(message).includes('is unavailable to geo indexes'))).toHaveLength(1);
    } finally {
      vi.restoreAllMocks();
      await own.server.start();
    }
    await expect.poll(() => stores.add('s-4', PARIS).catch(() => 'down'), { timeout: 10_000, interval: 100 }).toBe(true);
    await app.close();
  });
});
