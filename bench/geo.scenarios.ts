import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { GeoService, RedisPatternsModule, type GeoPoint } from '../lib/index.js';
import type { Scenario } from './harness.js';

const ADD = 'geo add';
const NEAR = 'geo near';
/** Places in every index before anything is measured: stores over about 80 x 70 km around Paris. */
export const PLACE_COUNT = 10_000;

/** A place that moves with the counter (a fixed sequence, no randomness): the same for every scenario. */
const placeOf = (i: number) => ({
  longitude: 2.3522 + (((i * 7919) % 10_007) / 10_007 - 0.5) * 1.1,
  latitude: 48.8566 + (((i * 104_729) % 10_009) / 10_009 - 0.5) * 0.7,
});
const store = (i: number) => `store-${i % PLACE_COUNT}`;

/**
 * Geo indexes over PLACE_COUNT stores (the raw key and the GeoIndex filled alike):
 * - 'geo add': raw `GEOADD key lng lat member` (the baseline) and `GeoIndex.add` (arguments
 *   checked, one GEOADD), moving existing stores;
 * - 'geo near': raw `GEOSEARCH FROMLONLAT BYRADIUS 5 km ASC COUNT 20 WITHDIST` (the baseline,
 *   reply left as strings) and `GeoIndex.near` with the same search (reply parsed into objects).
 * Every search must find a store: an empty result throws and stops the run.
 */
export async function geoScenarios(url: string): Promise<{ scenarios: Scenario[]; close(): Promise<void> }> {
  const raw = new Redis(url);
  @Module({ imports: [RedisPatternsModule.forRoot({ connection: { url }, keyPrefix: 'bench-geo:' })] })
  class GeoBenchModule {}
  const app: INestApplicationContext = await NestFactory.createApplicationContext(GeoBenchModule, { logger: false });
  const stores = app.get(GeoService).index('stores');
  const RAW_KEY = 'bench-raw-geo';

  const points: GeoPoint[] = Array.from({ length: PLACE_COUNT }, (_, i) => ({ member: store(i), ...placeOf(i) }));
  await stores.addMany(points);
  for (let i = 0; i < PLACE_COUNT; i += 1_000)
    await raw.geoadd(RAW_KEY, ...points.slice(i, i + 1_000).flatMap(({ member, longitude, latitude }) => [longitude, latitude, member]));
  const found = <T>(matches: T[]): T[] => {
    if (matches.length === 0) throw new Error('a search found no store');
    return matches;
  };
  /** Search centers: places of the same sequence, shifted so they are not stores themselves. */
  const centerOf = (i: number) => placeOf(i + PLACE_COUNT / 2);

  const scenarios: Scenario[] = [
    {
      group: ADD,
      name: 'raw ioredis GEOADD',
      baseline: true,
      run: (i) => {
        const { longitude, latitude } = placeOf(i + 1);
        return raw.geoadd(RAW_KEY, longitude, latitude, store(i));
      },
    },
    { group: ADD, name: 'GeoIndex.add', run: (i) => stores.add(store(i), placeOf(i + 1)) },
    {
      group: NEAR,
      name: 'raw ioredis GEOSEARCH BYRADIUS 5 km COUNT 20 WITHDIST',
      baseline: true,
      run: async (i) => {
        const { longitude, latitude } = centerOf(i);
        return found(
          (await raw.call(
            'GEOSEARCH',
            RAW_KEY,
            'FROMLONLAT',
            longitude,
            latitude,
            'BYRADIUS',
            5,
            'km',
            'ASC',
            'COUNT',
            20,
            'WITHDIST',
          )) as unknown[],
        );
      },
    },
    {
      group: NEAR,
      name: 'GeoIndex.near (radius 5 km, limit 20, withDistance)',
      run: async (i) => found(await stores.near(centerOf(i), { radius: 5, unit: 'km', limit: 20, withDistance: true })),
    },
  ];
  return {
    scenarios,
    async close() {
      await Promise.all([raw.quit(), app.close()]);
    },
  };
}
