import { Injectable, Logger } from '@nestjs/common';
import { RedisKeys } from '../core/keys.js';
import { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { knownRecord } from '../core/validation.js';
import { GeoIndex } from './geo-index.js';
import type { GeoIndexOptions } from './geo.options.js';
import { checkIndexName } from './geo.validation.js';

/**
 * Geo indexes on Redis sorted sets: members with a place each (stores, drivers, venues), found
 * by distance from a place or another member, within a radius or a box, nearest first.
 *
 * @example
 * const stores = this.geo.index('stores');
 * await stores.add('store-12', { longitude: 2.3522, latitude: 48.8566 });
 * const near = await stores.near({ longitude: 2.35, latitude: 48.85 }, { radius: 5, unit: 'km', limit: 20, withDistance: true });
 */
@Injectable()
export class GeoService {
  private readonly redis: RedisClient;
  private indexesMade = 0;
  private readonly outage = new OutageLog(new Logger('RedisPatterns:Geo'), 'geo indexes', 'calls reject with RedisUnavailableError (503)');

  constructor(
    connections: RedisConnections,
    private readonly keys: RedisKeys,
  ) {
    this.redis = connections.get();
  }

  /** Whether an index was made (indexes declared under `geo` are made at startup). */
  get inUse(): boolean {
    return this.indexesMade > 0;
  }

  /**
   * The index called `name` (1 to 128 characters), on one key: `<prefix>{geo:<name>}`. Indexes
   * have no options yet (`{}`); nothing is stored until the first `add`.
   * @example
   * const drivers = this.geo.index('drivers');
   */
  index(name: string, options: GeoIndexOptions = {}): GeoIndex {
    checkIndexName(name);
    knownRecord(`geo index "${name}"`, options, []);
    this.indexesMade++;
    return new GeoIndex(name, this.redis, this.keys.tagged(['geo', name]), this.outage);
  }
}
