import { Reflector } from '@nestjs/core';
import type { Duration } from '../core/duration.js';

/**
 * The TTL of responses cached by `CacheInterceptor`, on a handler or a controller.
 * @example
 * @Get(':id')
 * @CacheTTL('5m')
 * find(@Param('id') id: string) { ... }
 */
export const CacheTTL = Reflector.createDecorator<Duration>();

/**
 * Turns `CacheInterceptor` off for a handler (or a whole controller).
 * @example
 * @Get('me')
 * @NoCache()
 * me() { ... }
 */
export const NoCache = Reflector.createDecorator<void, true>({ transform: () => true });
