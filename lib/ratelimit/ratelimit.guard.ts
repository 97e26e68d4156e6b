import { Inject, Injectable, type CanActivate, type ExecutionContext, type Type } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { RedisPatternsError } from '../core/errors.js';
import { assertWellFormed } from '../core/validation.js';
import { RATE_LIMIT_POLICIES, SKIP_RATE_LIMIT } from './ratelimit.decorator.js';
import { RateLimitExceededException } from './ratelimit.exception.js';
import { rateLimitHeaders } from './ratelimit.headers.js';
import { RATE_LIMIT_OPTIONS, type RateLimitDecision } from './ratelimit.options.js';
import { toCost, type ResolvedPolicy, type ResolvedRateLimitOptions } from './ratelimit.options-validator.js';
import { RateLimitService, type RateLimitCheck } from './ratelimit.service.js';

/** A policy as it applies to a route: module policies count across all routes, the others per route. */
export interface RoutePolicy {
  policy: ResolvedPolicy;
  scope: string;
}

interface HttpRequest {
  ip?: string;
  user?: Record<string, unknown>;
  socket?: { remoteAddress?: string };
}

/**
 * Enforces `@RateLimit` policies (and the module's `rateLimit.policies`) on HTTP handlers, and on
 * other contexts (ws, rpc, graphql) without headers. Use it per controller or handler with
 * `@UseGuards(RateLimitGuard)`, or for every route as an `APP_GUARD`.
 *
 * One round trip decides all of a route's policies; a rejected request spends nothing. Over the
 * limit it throws `RateLimitExceededException` (429, with `Retry-After`). When Redis fails, 'open'
 * policies admit and 'closed' ones answer 503.
 *
 * The `protected` hooks can be overridden: `getTracker`, `generateKey`, `shouldSkip`,
 * `throwException`.
 *
 * @example
 * providers: [{ provide: APP_GUARD, useClass: RateLimitGuard }]
 */
/** A route's handler, as Nest gives it. */
type Handler = ReturnType<ExecutionContext['getHandler']>;

@Injectable()
export class RateLimitGuard implements CanActivate {
  /** Each handler's policies, merged once. */
  private readonly routes = new WeakMap<Type, WeakMap<Handler, RoutePolicy[]>>();

  constructor(
    protected readonly rateLimits: RateLimitService,
    protected readonly reflector: Reflector,
    @Inject(RATE_LIMIT_OPTIONS) private readonly settings: ResolvedRateLimitOptions,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const route = this.policiesOf(context);
    if (route.length === 0 || alreadyDecided(context) || (await this.shouldSkip(context))) return true;
    const checks =
      route.length === 1
        ? [await this.check(context, route[0])]
        : await Promise.all(route.map((routePolicy) => this.check(context, routePolicy)));
    // A closed policy that cannot be decided throws RateLimitUnavailableError: 503.
    const decisions = await this.rateLimits.decide(checks);
    if (context.getType() === 'http') this.setHeaders(context, decisions);
    if (decisions.some((decision) => !decision.allowed)) this.throwException(context, decisions);
    return true;
  }

  /** Who the request counts against: `ip:<address>`, `user:<id>` (the IP when there is no user), or what `by` returns. */
  protected async getTracker(context: ExecutionContext, policy: ResolvedPolicy): Promise<string> {
    if (typeof policy.by === 'function') {
      const tracker = await policy.by(context);
      if (typeof tracker !== 'string' || tracker.length === 0)
        throw new RedisPatternsError(
          `Rate limit "${policy.name}": \`by\` returned ${typeof tracker === 'string' ? 'an empty string' : typeof tracker}, expected a non-empty string`,
        );
      return assertWellFormed(`rate limit "${policy.name}" tracker (what \`by\` returned)`, tracker);
    }
    const request = requestOf(context);
    const user = request?.user;
    const userId = user?.id ?? user?.sub ?? user?.userId;
    if (policy.by === 'user' && userId !== undefined && userId !== null)
      return assertWellFormed(`rate limit "${policy.name}" tracker (the user id)`, `user:${String(userId)}`);
    const ip = request?.ip ?? request?.socket?.remoteAddress ?? wsAddress(context);
    if (!ip)
      throw new RedisPatternsError(
        `Rate limit "${policy.name}": no client address in this ${context.getType()} context; give the policy a \`by\` function`,
      );
    return `ip:${ip}`;
  }

  /** The Redis key of a policy for a tracker. */
  protected generateKey(_context: ExecutionContext, tracker: string, routePolicy: RoutePolicy): string {
    return this.rateLimits.keyOf(tracker, routePolicy.scope, routePolicy.policy);
  }

  /** Skip rate limiting for this request (for example for internal callers). @default false */
  protected async shouldSkip(_context: ExecutionContext): Promise<boolean> {
    return false;
  }

  /** Called when a policy rejects the request. */
  protected throwException(_context: ExecutionContext, decisions: readonly RateLimitDecision[]): never {
    throw new RateLimitExceededException(decisions);
  }

  private async check(context: ExecutionContext, routePolicy: RoutePolicy): Promise<RateLimitCheck> {
    const { policy } = routePolicy;
    const tracker = await this.getTracker(context, policy);
    const cost = typeof policy.cost === 'function' ? await policy.cost(context as never) : policy.cost;
    return { key: this.generateKey(context, tracker, routePolicy), policy, cost: toCost(cost, `rate limit "${policy.name}" cost`) };
  }

  private setHeaders(context: ExecutionContext, decisions: readonly RateLimitDecision[]): void {
    // As switchToHttp().getResponse() gives it, without allocating four objects.
    const response = context.getArgByIndex<{ header(name: string, value: string): unknown }>(1);
    for (const [name, value] of rateLimitHeaders(decisions, this.settings.headers)) response.header(name, value);
  }

  /** Module policies, then the controller's, then the handler's; a later one replaces an earlier one of the same name. */
  private policiesOf(context: ExecutionContext): RoutePolicy[] {
    const controller = context.getClass();
    const handler = context.getHandler();
    let byHandler = this.routes.get(controller);
    if (!byHandler) this.routes.set(controller, (byHandler = new WeakMap()));
    let route = byHandler.get(handler);
    if (!route) byHandler.set(handler, (route = this.mergePolicies(controller, handler)));
    return route;
  }

  private mergePolicies(controller: Type, handler: Handler): RoutePolicy[] {
    const scope = `${controller.name}.${handler.name}`;
    const merged = new Map<string, RoutePolicy>();
    for (const policy of this.settings.policies) merged.set(policy.name, { policy, scope: 'global' });
    for (const target of [controller, handler]) {
      const policies: ResolvedPolicy[] = this.reflector.get(RATE_LIMIT_POLICIES, target) ?? [];
      for (const policy of policies) merged.set(policy.name, { policy, scope });
    }
    const skipped: (true | string[] | undefined)[] = [
      this.reflector.get(SKIP_RATE_LIMIT, controller),
      this.reflector.get(SKIP_RATE_LIMIT, handler),
    ];
    if (skipped.includes(true)) return [];
    for (const names of skipped) if (Array.isArray(names)) for (const name of names) merged.delete(name);
    return [...merged.values()];
  }
}

/** Requests (or ws/rpc payloads) already decided, so a guard that is both global and per controller counts once. */
const decided = new WeakSet<object>();

function alreadyDecided(context: ExecutionContext): boolean {
  const request: unknown = context.getArgByIndex(0);
  if (typeof request !== 'object' || request === null) return false;
  if (decided.has(request)) return true;
  decided.add(request);
  return false;
}

function requestOf(context: ExecutionContext): HttpRequest | undefined {
  switch (context.getType<string>()) {
    case 'http':
      return context.getArgByIndex<HttpRequest>(0); // switchToHttp().getRequest(), without allocating
    case 'graphql':
      return (context.getArgByIndex(2) as { req?: HttpRequest } | undefined)?.req;
    default:
      return undefined;
  }
}

function wsAddress(context: ExecutionContext): string | undefined {
  if (context.getType() !== 'ws') return undefined;
  const client = context.switchToWs().getClient<{ handshake?: { address?: string }; _socket?: { remoteAddress?: string } }>();
  return client?.handshake?.address ?? client?._socket?.remoteAddress;
}
