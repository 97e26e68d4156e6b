/**
 * Options of one geo index, given to `GeoService.index(name, options)` or declared under `geo`
 * in the module options. There are none yet: declare an index with `{}`.
 *
 * @example
 * RedisPatternsModule.forRoot({ connection, geo: { stores: {} } });
 */
export type GeoIndexOptions = Record<string, never>;

/** The units of distances, as Redis names them: metres, kilometres, miles and feet. */
export type GeoUnit = 'm' | 'km' | 'mi' | 'ft';

/**
 * A place on Earth, in degrees (WGS 84). Redis stores positions as 52-bit geohashes: a position
 * reads back within about 0.6 m (well within 1e-5 degrees) of what was written.
 */
export interface GeoCoordinates {
  /** From -180 to 180. */
  longitude: number;
  /** From -85.05112878 to 85.05112878 (the range of Redis's Web Mercator geohashes; the poles are out). */
  latitude: number;
}

/** A member and its place, for `GeoIndex.addMany`. */
export interface GeoPoint extends GeoCoordinates {
  member: string;
}

/** Where `GeoIndex.near` searches from: a place, or a member of the index. */
export type GeoCenter = GeoCoordinates | { member: string };

/**
 * What `GeoIndex.near` looks for: exactly one of `radius` and `box`, around the center.
 *
 * @example
 * await stores.near({ longitude: 2.35, latitude: 48.85 }, { radius: 5, unit: 'km', limit: 20, withDistance: true });
 * await stores.near({ member: 'store-12' }, { box: { width: 10, height: 4 }, unit: 'km' });
 */
export interface GeoSearchOptions {
  /** Members within this distance of the center (a circle). */
  radius?: number;
  /** Members within a rectangle of this width (east-west) and height (north-south), centred on the center. */
  box?: { width: number; height: number };
  /** The unit of `radius`, `box` and the distances returned. @default 'm' */
  unit?: GeoUnit;
  /** At most this many members: the nearest ones (the farthest with `sort: 'desc'`). @default all of them */
  limit?: number;
  /** `'asc'`: nearest first; `'desc'`: farthest first. @default 'asc' */
  sort?: 'asc' | 'desc';
  /** Give each match its distance from the center, in `unit`. @default false */
  withDistance?: boolean;
  /** Give each match its longitude and latitude. @default false */
  withCoordinates?: boolean;
}

/** One member found by `GeoIndex.near`: `distance` with `withDistance`, the coordinates with `withCoordinates`. */
export interface GeoMatch {
  member: string;
  /** From the center, in the search's unit. */
  distance?: number;
  longitude?: number;
  latitude?: number;
}

/** Redis's latitude range (Web Mercator): GEOADD refuses anything beyond. */
export const MAX_LATITUDE = 85.05112878;
