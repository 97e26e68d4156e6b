import { Controller, Get, Param } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { InjectRedis, RedisKeys } from '../lib/index.js';

/** Raw access: the injected ioredis client, with keys built (and user input encoded) by RedisKeys. */
@Controller('visits')
export class VisitsController {
  constructor(
    @InjectRedis() private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  @Get(':page')
  async count(@Param('page') page: string): Promise<{ page: string; key: string; visits: number }> {
    const key = this.keys.key('visits', page);
    return { page, key, visits: await this.redis.incr(key) };
  }
}
