import { Controller, Get } from '@nestjs/common';
import { RedisInsightsService, type RedisBigKeysReport, type RedisServerSnapshot } from '../lib/index.js';

/**
 * What the Redis server is doing: its numbers from INFO, and which features' keys take the most
 * memory (a sample of 1000 keys). Key names may hold user data: an app keeps such a route for its
 * operators (behind auth), never public.
 */
@Controller('insights')
export class InsightsController {
  constructor(private readonly insights: RedisInsightsService) {}

  @Get()
  async overview(): Promise<{ snapshot: RedisServerSnapshot; bigKeys: RedisBigKeysReport }> {
    const [snapshot, bigKeys] = await Promise.all([this.insights.snapshot(), this.insights.bigKeys({ sample: 1000 })]);
    return { snapshot, bigKeys };
  }
}
