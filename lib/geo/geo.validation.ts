import { InvalidOptionError, ValueDescription } from '../core/errors.js';
import { isRecord, knownRecord, toBoolean, toInstanceName, toMemberArgument, toPositiveInteger } from '../core/validation.js';
import { MAX_LATITUDE, type GeoCenter, type GeoSearchOptions, type GeoUnit } from './geo.options.js';

/**
 * The checks of the geo feature's arguments, made before anything is sent to Redis. Each throws
 * an InvalidOptionError naming the argument (a MalformedTextError for a string with a lone surrogate).
 */

/** The longest member, in bytes. */
const MAX_MEMBER_BYTES = 512;
export const GEO_UNITS: readonly GeoUnit[] = ['m', 'km', 'mi', 'ft'];
const SEARCH_OPTIONS = ['radius', 'box', 'unit', 'limit', 'sort', 'withDistance', 'withCoordinates'];

export function checkIndexName(name: unknown): asserts name is string {
  toInstanceName(name, 'an index');
}

/** A member: a non-empty, well-formed string of at most 512 bytes. */
export function checkMember(member: unknown, argument = 'member'): string {
  return toMemberArgument(argument, member, MAX_MEMBER_BYTES);
}

/** `[longitude, latitude]` of a place; `where` prefixes the names in errors (`'center.'`, `'points[3].'`). */
export function checkCoordinates(place: unknown, where = ''): [number, number] {
  if (!isRecord(place)) throw new InvalidOptionError(where === '' ? 'coordinates' : where.slice(0, -1), 'an object', place);
  const { longitude, latitude } = place;
  if (typeof longitude !== 'number' || !Number.isFinite(longitude) || longitude < -180 || longitude > 180)
    throw new InvalidOptionError(`${where}longitude`, 'a number of degrees from -180 to 180', longitude);
  if (typeof latitude !== 'number' || !Number.isFinite(latitude) || latitude < -MAX_LATITUDE || latitude > MAX_LATITUDE)
    throw new InvalidOptionError(`${where}latitude`, `a number of degrees from -${MAX_LATITUDE} to ${MAX_LATITUDE}`, latitude);
  return [longitude, latitude];
}

export function checkUnit(unit: unknown, argument = 'unit'): GeoUnit {
  if (!GEO_UNITS.includes(unit as GeoUnit)) throw new InvalidOptionError(argument, "'m', 'km', 'mi' or 'ft'", unit);
  return unit as GeoUnit;
}

/** A checked search: GEOSEARCH's arguments after the key, and what each reply row holds. */
export interface GeoSearch {
  args: (string | number)[];
  /** The center is a member (FROMMEMBER): Redis errors when it is missing. */
  fromMember: boolean;
  withDistance: boolean;
  withCoordinates: boolean;
}

/** Checks a center and search options, and turns them into GEOSEARCH arguments. */
export function toGeoSearch(center: GeoCenter, options: GeoSearchOptions): GeoSearch {
  const args: (string | number)[] = [];
  const fromMember = isRecord(center) && 'member' in center;
  if (fromMember) {
    const { member } = knownRecord('center', center, ['member']);
    args.push('FROMMEMBER', checkMember(member, 'center.member'));
  } else {
    args.push('FROMLONLAT', ...checkCoordinates(center, 'center.'));
  }

  const given = knownRecord('options', options, SEARCH_OPTIONS) as GeoSearchOptions;
  const unit = checkUnit(given.unit ?? 'm', 'unit');
  if ((given.radius === undefined) === (given.box === undefined))
    throw new InvalidOptionError(
      'radius',
      'exactly one of radius and box',
      new ValueDescription(given.radius === undefined ? 'neither' : 'both'),
    );
  if (given.radius !== undefined) {
    args.push('BYRADIUS', positiveDistance('radius', given.radius), unit);
  } else {
    const box = knownRecord('box', given.box, ['width', 'height']);
    args.push('BYBOX', positiveDistance('box.width', box.width), positiveDistance('box.height', box.height), unit);
  }

  const sort = given.sort ?? 'asc';
  if (sort !== 'asc' && sort !== 'desc') throw new InvalidOptionError('sort', "'asc' or 'desc'", sort);
  args.push(sort === 'asc' ? 'ASC' : 'DESC');
  if (given.limit !== undefined) args.push('COUNT', toPositiveInteger('limit', given.limit));
  const withDistance = given.withDistance === undefined ? false : toBoolean('withDistance', given.withDistance);
  const withCoordinates = given.withCoordinates === undefined ? false : toBoolean('withCoordinates', given.withCoordinates);
  if (withDistance) args.push('WITHDIST');
  if (withCoordinates) args.push('WITHCOORD');
  return { args, fromMember, withDistance, withCoordinates };
}

function positiveDistance(argument: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)
    throw new InvalidOptionError(argument, 'a positive finite number', value);
  return value;
}
