import { defineFeature } from '../core/feature.js';
import { getGeoIndexToken } from './geo.decorator.js';
import type { GeoIndexOptions } from './geo.options.js';
import { GeoService } from './geo.service.js';

/** Geo indexes: `GeoService`, and indexes declared by name under `geo` for `@InjectGeoIndex`. Their keys must not be evicted. */
export const geoFeature = defineFeature({
  name: 'geo',
  providers: [GeoService],
  exports: [GeoService],
  named: {
    extra: 'geo',
    provider: (name, options: GeoIndexOptions) => ({
      provide: getGeoIndexToken(name),
      inject: [GeoService],
      useFactory: (geo: GeoService) => geo.index(name, options),
    }),
  },
  keys: { durability: 'durable', inUse: (ref) => ref.get(GeoService).inUse },
  keySegments: ['geo'],
});
