import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { lastValueFrom, of, type Observable } from 'rxjs';
import type { Duration } from '../core/duration.js';
import { CacheService } from './cache.service.js';
import { CacheTTL, NoCache } from './cache-ttl.decorator.js';

interface HttpRequest {
  method?: string;
  url?: string;
  originalUrl?: string;
  headers?: Record<string, string | string[] | undefined>;
  user?: Record<string, unknown>;
}

/** The request of an HTTP context, as `switchToHttp().getRequest()` gives it without allocating four objects per call. */
function requestOf(context: ExecutionContext): HttpRequest {
  return context.getArgByIndex<HttpRequest>(0);
}

/**
 * Caches the responses of HTTP GET handlers, through `CacheService` (so with stampede protection,
 * L1 and stale-while-revalidate when configured).
 *
 * - The key is the route and its query (parameters sorted) plus {@link vary}: by default the
 *   authenticated user's `id` (or `sub`, or `userId`) when `request.user` exists, so one user's
 *   response never reaches another. A `request.user` with none of them is not cached at all.
 * - `Cache-Control: no-cache` in the request skips the cached copy and stores the new response.
 * - Sets `X-Cache: HIT | MISS | STALE`. Only successful responses are cached (a thrown exception is not).
 * - `@CacheTTL()` sets the TTL, `@NoCache()` turns it off. The `protected` hooks can be overridden.
 *
 * @example
 * @Controller('products')
 * @UseInterceptors(CacheInterceptor)
 * export class ProductController {
 *   @Get(':id')
 *   @CacheTTL('1m')
 *   find(@Param('id') id: string) { ... }
 * }
 */
@Injectable()
export class CacheInterceptor implements NestInterceptor {
  /** Each handler's settings, per controller (a handler may be inherited by several). */
  private readonly routes = new WeakMap<object, WeakMap<object, { noCache: boolean; ttl: Duration | undefined }>>();

  constructor(
    protected readonly cache: CacheService,
    protected readonly reflector: Reflector,
  ) {}

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const key = this.isRequestCacheable(context) ? this.trackBy(context) : undefined;
    if (key === undefined) return next.handle();
    const { ttl } = this.routeSettings(context);
    const request = requestOf(context);
    const response = context.getArgByIndex<{ statusCode?: number }>(1);
    const run = () => lastValueFrom(next.handle());
    // Only successful responses are stored (a handler may set another status without throwing).
    const unless = () => (response.statusCode ?? 200) >= 300;
    if (this.wantsFreshResponse(request)) {
      const body = await run();
      if (!unless()) await this.cache.set(key, body, { ttl }).catch(() => undefined);
      this.setCacheHeader(context, 'MISS');
      return of(body);
    }
    const { value, status } = await this.cache.lookup(key, run, { ttl, unless });
    this.setCacheHeader(context, status === 'hit' ? 'HIT' : status === 'stale' ? 'STALE' : 'MISS');
    return of(value);
  }

  /** `@NoCache()` and `@CacheTTL()` of a handler, looked up once per handler. */
  private routeSettings(context: ExecutionContext): { noCache: boolean; ttl: Duration | undefined } {
    const [controller, handler] = [context.getClass(), context.getHandler()];
    let byHandler = this.routes.get(controller);
    if (!byHandler) this.routes.set(controller, (byHandler = new WeakMap()));
    let settings = byHandler.get(handler);
    if (!settings) {
      const targets = [handler, controller];
      settings = {
        noCache: this.reflector.getAllAndOverride(NoCache, targets) === true,
        ttl: this.reflector.getAllAndOverride(CacheTTL, targets),
      };
      byHandler.set(handler, settings);
    }
    return settings;
  }

  /** GET requests of HTTP handlers without `@NoCache()`. */
  protected isRequestCacheable(context: ExecutionContext): boolean {
    if (context.getType() !== 'http') return false;
    if (this.routeSettings(context).noCache) return false;
    return requestOf(context).method === 'GET';
  }

  /** The cache key of a request, or undefined to not cache it. */
  protected trackBy(context: ExecutionContext): string | undefined {
    const request = requestOf(context);
    const vary = this.vary(context);
    if (vary === null) return undefined;
    const url = request.originalUrl ?? request.url ?? '/';
    const queryStart = url.indexOf('?');
    let route = url;
    if (queryStart !== -1) {
      // Parameters sorted, so ?a=1&b=2 and ?b=2&a=1 share an entry.
      const query = new URLSearchParams(url.slice(queryStart + 1));
      query.sort();
      const sorted = query.toString();
      route = `${url.slice(0, queryStart)}${sorted ? `?${sorted}` : ''}`;
    }
    return `http:${route}${vary === undefined ? '' : `|vary:${vary}`}`;
  }

  /**
   * What else the response depends on: by default the authenticated user (`id`, `sub` or `userId`
   * of `request.user`). Undefined: nothing else; null: it depends on something unknown, do not cache.
   */
  protected vary(context: ExecutionContext): string | undefined | null {
    const user = requestOf(context).user;
    if (user === undefined || user === null) return undefined;
    const id = user.id ?? user.sub ?? user.userId;
    return id === undefined || id === null ? null : `user:${String(id)}`;
  }

  protected wantsFreshResponse(request: HttpRequest): boolean {
    const cacheControl = request.headers?.['cache-control'];
    return (Array.isArray(cacheControl) ? cacheControl.join(',') : (cacheControl ?? '')).includes('no-cache');
  }

  /** Works on Express (`setHeader`) and Fastify (`header`). */
  protected setCacheHeader(context: ExecutionContext, value: 'HIT' | 'MISS' | 'STALE'): void {
    const response = context.getArgByIndex<{
      header?: (name: string, value: string) => unknown;
      setHeader?: (name: string, value: string) => unknown;
    }>(1);
    // Node's own setHeader (Express) is the cheapest; a Fastify reply has header() instead.
    if (typeof response.setHeader === 'function') response.setHeader('X-Cache', value);
    else response.header?.('X-Cache', value);
  }
}
