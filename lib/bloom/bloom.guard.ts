import { applyDecorators, Injectable, Logger, NotFoundException, SetMetadata, UseGuards, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { InvalidOptionError } from '../core/errors.js';
import { OutageLog } from '../core/outage-log.js';
import { BloomFilterService } from './bloom.service.js';

/** Where `@BloomGuard` takes the item from: a route parameter, or a function of the context. */
export type BloomGuardSource = { param: string } | { from: (context: ExecutionContext) => string | undefined };

interface BloomGuardSettings {
  filter: string;
  source: BloomGuardSource;
}

const BLOOM_GUARD = 'redis-patterns:bloom-guard';

/**
 * Answers 404 without calling the handler when the item (a route parameter, say) is certainly
 * not in the filter. When the filter is not built yet, or Redis fails, the request goes through
 * (fail-open), and the outage is logged once.
 *
 * @example
 * @Get(':id')
 * @BloomGuard('products', { param: 'id' })
 * find(@Param('id') id: string) { ... }
 */
export function BloomGuard(filter: string, source: BloomGuardSource): MethodDecorator & ClassDecorator {
  if (typeof filter !== 'string' || filter.length === 0) throw new InvalidOptionError('filter', 'a filter name', filter);
  const valid = typeof source === 'object' && source !== null && (typeof (source as { param?: unknown }).param === 'string' || typeof (source as { from?: unknown }).from === 'function');
  if (!valid) throw new InvalidOptionError(`@BloomGuard('${filter}') source`, "{ param: 'name' } or { from: (context) => item }", source);
  return applyDecorators(SetMetadata(BLOOM_GUARD, { filter, source } satisfies BloomGuardSettings), UseGuards(BloomFilterGuard));
}

/** The guard behind `@BloomGuard`. Override `itemOf` to take the item from elsewhere. */
@Injectable()
export class BloomFilterGuard implements CanActivate {
  private readonly outage = new OutageLog(new Logger('RedisPatterns:Bloom'), (reason) => `Bloom filters are unavailable (${reason}); @BloomGuard lets requests through until they are back`, 'Bloom filters are available again');

  constructor(
    protected readonly blooms: BloomFilterService,
    protected readonly reflector: Reflector,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const settings = this.reflector.getAllAndOverride<BloomGuardSettings | undefined>(BLOOM_GUARD, [context.getHandler(), context.getClass()]);
    if (!settings) return true;
    const item = this.itemOf(context, settings.source);
    // Nothing to check (no such parameter): the handler decides.
    if (item === undefined || item === '') return true;
    const filter = this.blooms.get(settings.filter);
    let present: boolean;
    try {
      present = await filter.mightContain(item);
      this.outage.succeeded();
    } catch (error) {
      // An item no filter can hold (too long) was never added.
      if (error instanceof InvalidOptionError) throw new NotFoundException();
      this.outage.failed(error);
      return true;
    }
    if (!present) throw new NotFoundException();
    return true;
  }

  /** The item to look up. */
  protected itemOf(context: ExecutionContext, source: BloomGuardSource): string | undefined {
    if ('from' in source) return source.from(context);
    const params = context.switchToHttp().getRequest<{ params?: Record<string, string> }>().params;
    return params?.[source.param];
  }
}
