import { Controller, Get, UseGuards } from '@nestjs/common';
import { ThrottlerGuard, type ThrottlerModuleOptions } from '@nestjs/throttler';
import type { RedisThrottlerStorage } from '../lib/index.js';

const QUOTES = [
  'Simplicity is prerequisite for reliability.',
  'Make it work, make it right, make it fast.',
  'There are only two hard things: cache invalidation and naming things.',
];

/**
 * The options of ThrottlerModule (AppModule): @nestjs/throttler as an app has it, but counting in
 * Redis with RedisThrottlerStorage, so the limit holds across every instance. 3 requests per 10
 * seconds per IP, then blocked for 30 seconds.
 */
export function throttlerOptions(storage: RedisThrottlerStorage): ThrottlerModuleOptions {
  return { throttlers: [{ ttl: 10_000, limit: 3, blockDuration: 30_000 }], storage };
}

/**
 * A route kept on @nestjs/throttler: its own ThrottlerGuard and headers (`X-RateLimit-Limit`,
 * `-Remaining`, `-Reset`; `Retry-After` with the 429), with the hits counted in Redis.
 */
@Controller('quotes')
@UseGuards(ThrottlerGuard)
export class QuotesController {
  /** `curl -i http://127.0.0.1:3000/quotes/random` (run it 4 times within 10 seconds) */
  @Get('random')
  random(): { quote: string } {
    return { quote: QUOTES[Math.floor(Math.random() * QUOTES.length)] };
  }
}
