import { BadRequestException, Controller, Get, Query, type OnModuleInit } from '@nestjs/common';
import { InjectGeoIndex, InvalidOptionError, type GeoIndex, type GeoMatch } from '../lib/index.js';

/** The sample's stores, around Paris: added to the index at startup. */
const STORES = [
  { member: 'louvre', longitude: 2.3376, latitude: 48.8606 },
  { member: 'bastille', longitude: 2.3691, latitude: 48.8532 },
  { member: 'montmartre', longitude: 2.3431, latitude: 48.8867 },
  { member: 'la-defense', longitude: 2.2385, latitude: 48.8918 },
  { member: 'versailles', longitude: 2.1204, latitude: 48.8049 },
];

/**
 * Stores near a place (a geo index): `curl 'http://127.0.0.1:3000/stores/near?lng=2.3522&lat=48.8566&km=5'`
 * answers up to 20 stores within `km` (default 5, at most 50), nearest first, with their distance in km.
 */
@Controller('stores')
export class StoresController implements OnModuleInit {
  constructor(@InjectGeoIndex('stores') private readonly stores: GeoIndex) {}

  async onModuleInit(): Promise<void> {
    // Without Redis the sample still starts; the index is filled on the next start.
    await this.stores.addMany(STORES).catch(() => undefined);
  }

  @Get('near')
  async near(@Query('lng') lng?: string, @Query('lat') lat?: string, @Query('km') km = '5'): Promise<GeoMatch[]> {
    const radius = Number(km);
    if (!(radius > 0 && radius <= 50)) throw new BadRequestException('km must be a number above 0 and at most 50');
    try {
      // A missing lng or lat becomes NaN, which the index refuses by name.
      return await this.stores.near(
        { longitude: Number(lng ?? NaN), latitude: Number(lat ?? NaN) },
        { radius, unit: 'km', limit: 20, withDistance: true },
      );
    } catch (error) {
      // Bad coordinates are the caller's: 400 with what was wrong. Redis down answers 503 by itself.
      if (error instanceof InvalidOptionError) throw new BadRequestException(error.message);
      throw error;
    }
  }
}
