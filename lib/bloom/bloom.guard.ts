import {
  applyDecorators,
  Injectable,
  Logger,
  NotFoundException,
  SetMetadata,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { InvalidOptionError } from '../core/errors.js';
import { isStoreFailure } from '../core/store-failure.js';
import { MAX_ITEM_LENGTH } from './bloom-filter.js';
import { BLOOM_GUARD } from './bloom.decorator.js';
import { BloomFilterService } from './bloom.service.js';

/** Where `@BloomGuard` takes the item from: a route parameter, or a function of the context. */
export type BloomGuardSource = { param: string } | { from: (context: ExecutionContext) => string | number | undefined };

interface BloomGuardSettings {
  filter: string;
  source: BloomGuardSource;
}

/**
 * Answers 404 without calling the handler when the item (a route parameter, say) is certainly
 * not in the filter, which must be declared in the module options (checked at startup). When
 * the filter is not built yet, or Redis fails, the request goes through (fail-open), and that is
 * logged once. An item that is not a string or number (a repeated query parameter) goes
 * through too: the handler decides.
 *
 * @example
 * @Get(':id')
 * @BloomGuard('products', { param: 'id' })
 * find(@Param('id') id: string) { ... }
 */
export function BloomGuard(filter: string, source: BloomGuardSource): MethodDecorator & ClassDecorator {
  if (typeof filter !== 'string' || filter.length === 0) throw new InvalidOptionError('filter', 'a filter name', filter);
  const valid =
    typeof source === 'object' &&
    source !== null &&
    (typeof (source as { param?: unknown }).param === 'string' || typeof (source as { from?: unknown }).from === 'function');
  if (!valid) throw new InvalidOptionError(`@BloomGuard('${filter}') source`, "{ param: 'name' } or { from: (context) => item }", source);
  return applyDecorators(SetMetadata(BLOOM_GUARD, { filter, source } satisfies BloomGuardSettings), UseGuards(BloomFilterGuard));
}

/** The guard behind `@BloomGuard`. Override `itemOf` to take the item from elsewhere. */
@Injectable()
export class BloomFilterGuard implements CanActivate {
  private readonly logger = new Logger('RedisPatterns:Bloom');
  /** Filters found not built, each logged once. */
  private readonly notBuilt = new Set<string>();

  constructor(
    protected readonly blooms: BloomFilterService,
    protected readonly reflector: Reflector,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const settings = this.reflector.getAllAndOverride<BloomGuardSettings | undefined>(BLOOM_GUARD, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (!settings) return true;
    const raw = this.itemOf(context, settings.source);
    const item = typeof raw === 'number' ? String(raw) : raw;
    // Nothing to check (no such parameter, or not one value): the handler decides.
    if (typeof item !== 'string' || item === '') return true;
    // Longer than any item a filter holds, or not well-formed Unicode (an add refuses it): never added.
    if (item.length > MAX_ITEM_LENGTH || !item.isWellFormed()) throw new NotFoundException();
    const filter = this.blooms.get(settings.filter);
    let result: { found: boolean[]; built: boolean };
    try {
      result = await filter.lookup([item]);
    } catch (error) {
      // Redis away (logged once by the filters' outage log): the handler decides.
      if (!isStoreFailure(error)) throw error;
      return true;
    }
    if (!result.built && !this.notBuilt.has(filter.name)) {
      this.notBuilt.add(filter.name);
      this.logger.warn(
        `Bloom filter "${filter.name}" is not built yet: @BloomGuard lets requests through until a prefill or rebuild fills it`,
      );
    }
    if (!result.found[0]) throw new NotFoundException();
    return true;
  }

  /** The item to look up. */
  protected itemOf(context: ExecutionContext, source: BloomGuardSource): unknown {
    if ('from' in source) return source.from(context);
    if (context.getType() !== 'http') return undefined;
    return context.switchToHttp().getRequest<{ params?: Record<string, unknown> }>().params?.[source.param];
  }
}
