import type { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';
import type { GeoCenter, GeoCoordinates, GeoMatch, GeoPoint, GeoSearchOptions, GeoUnit } from './geo.options.js';
import { checkCoordinates, checkMember, checkUnit, toGeoSearch } from './geo.validation.js';

/** Members per GEOADD in `addMany`: one command stays short, so other clients are not held up. */
const ADD_CHUNK = 1_000;
/** Redis's answer to GEOSEARCH FROMMEMBER when the member is not in the index. */
const MISSING_CENTER = /could not decode requested zset member/i;

/**
 * One geo index on a Redis sorted set (GEOADD, GEOPOS, GEODIST, GEOSEARCH): members with a
 * place each, found by distance from a place or from another member. Every argument is checked
 * before anything is sent; a call Redis cannot answer rejects with `RedisUnavailableError` (503).
 *
 * @example
 * const stores = this.geo.index('stores');
 * await stores.add('store-12', { longitude: 2.3522, latitude: 48.8566 });
 * await stores.near({ longitude: 2.35, latitude: 48.85 }, { radius: 5, unit: 'km', limit: 20, withDistance: true });
 * // [{ member: 'store-12', distance: 0.6 }, ...] nearest first
 */
export class GeoIndex {
  constructor(
    readonly name: string,
    private readonly redis: RedisClient,
    /** The index's sorted set: `<prefix>{geo:<name>}`. */
    private readonly key: string,
    /** The feature's outage log: a call Redis cannot answer rejects with RedisUnavailableError (503). */
    private readonly outage: OutageLog,
  ) {}

  /**
   * Places a member, or moves it. Resolves with true when it was new, false when it was already
   * in the index (its place is then updated).
   * @example
   * await stores.add('store-12', { longitude: 2.3522, latitude: 48.8566 }); // true
   */
  async add(member: string, place: GeoCoordinates): Promise<boolean> {
    checkMember(member);
    const [longitude, latitude] = checkCoordinates(place);
    return (await this.outage.guard(this.redis.geoadd(this.key, longitude, latitude, member))) === 1;
  }

  /**
   * Places many members, 1,000 per GEOADD, one command after the other. Every point is checked
   * before the first is sent (the iterable is read whole first), so a bad point writes nothing.
   * Resolves with how many members were new. A member given twice ends at its last place.
   * @example
   * await stores.addMany(rows.map((row) => ({ member: row.id, longitude: row.lng, latitude: row.lat })));
   */
  async addMany(points: Iterable<GeoPoint>): Promise<number> {
    const chunks: (string | number)[][] = [];
    let chunk: (string | number)[] = [];
    let index = 0;
    for (const point of points) {
      const where = `points[${index++}].`;
      const [longitude, latitude] = checkCoordinates(point, where);
      chunk.push(longitude, latitude, checkMember(point.member, `${where}member`));
      if (chunk.length === ADD_CHUNK * 3) {
        chunks.push(chunk);
        chunk = [];
      }
    }
    if (chunk.length > 0) chunks.push(chunk);
    let added = 0;
    for (const args of chunks) added += await this.outage.guard(this.redis.geoadd(this.key, ...args));
    return added;
  }

  /**
   * Takes members out of the index. Resolves with how many were in it.
   * @example
   * await stores.remove('store-12', 'store-13'); // 2
   */
  async remove(...members: string[]): Promise<number> {
    members.forEach((member, i) => checkMember(member, members.length === 1 ? 'member' : `members[${i}]`));
    if (members.length === 0) return 0;
    return this.outage.guard(this.redis.zrem(this.key, ...members));
  }

  /**
   * The member's place, or null when it is not in the index. Redis stores places as 52-bit
   * geohashes: they read back within about 0.6 m of what was written.
   * @example
   * await stores.position('store-12'); // { longitude: 2.35220..., latitude: 48.85660... }
   */
  async position(member: string): Promise<GeoCoordinates | null> {
    checkMember(member);
    const [place] = await this.outage.guard(this.redis.geopos(this.key, member));
    return place ? { longitude: Number(place[0]), latitude: Number(place[1]) } : null;
  }

  /**
   * The distance between two members, in `unit` (metres by default), or null when either is not
   * in the index. Redis computes it with the haversine formula on a sphere of radius 6372797.56 m
   * (within about 0.5% of the distance on the WGS 84 ellipsoid).
   * @example
   * await stores.distance('paris', 'london', 'km'); // 343.5...
   */
  async distance(a: string, b: string, unit: GeoUnit = 'm'): Promise<number | null> {
    checkMember(a, 'a');
    checkMember(b, 'b');
    checkUnit(unit);
    // ioredis types one overload per unit, not their union.
    const distance = (await this.outage.guard(this.redis.call('GEODIST', this.key, a, b, unit))) as string | null;
    return distance === null ? null : Number(distance);
  }

  /**
   * Members within `radius` of the center, or within a `box` centred on it (exactly one of the
   * two), nearest first unless `sort: 'desc'`, at most `limit` of them. The center is a place or
   * a member of the index; a member that is not in the index finds nothing (an empty array, as
   * an empty index does), so a stale id is not an error. One GEOSEARCH.
   * @example
   * await stores.near({ longitude: 2.35, latitude: 48.85 }, { radius: 5, unit: 'km', limit: 20, withDistance: true });
   * await stores.near({ member: 'store-12' }, { box: { width: 4, height: 2 }, unit: 'km', withCoordinates: true });
   */
  async near(center: GeoCenter, options: GeoSearchOptions): Promise<GeoMatch[]> {
    const search = toGeoSearch(center, options);
    let reply: unknown;
    try {
      reply = await this.outage.guard(this.redis.call('GEOSEARCH', this.key, ...search.args));
    } catch (error) {
      if (search.fromMember && error instanceof Error && MISSING_CENTER.test(error.message)) return [];
      throw error;
    }
    const rows = reply as (string | (string | [string, string])[])[];
    if (!search.withDistance && !search.withCoordinates) return (rows as string[]).map((member) => ({ member }));
    return rows.map((row) => {
      // [member, distance?, [longitude, latitude]?], in that order (WITHHASH is not asked for).
      const [member, ...rest] = row as [string, ...(string | [string, string])[]];
      const match: GeoMatch = { member };
      if (search.withDistance) match.distance = Number(rest.shift());
      if (search.withCoordinates) {
        const [longitude, latitude] = rest.shift() as [string, string];
        match.longitude = Number(longitude);
        match.latitude = Number(latitude);
      }
      return match;
    });
  }

  /**
   * How many members the index holds.
   * @example
   * await stores.count(); // 1204
   */
  async count(): Promise<number> {
    return this.outage.guard(this.redis.zcard(this.key));
  }

  /**
   * Empties the index (deletes its key).
   * @example
   * await stores.clear();
   */
  async clear(): Promise<void> {
    await this.outage.guard(this.redis.del(this.key));
  }
}
