import 'reflect-metadata';
import { InvalidOptionError, RedisPatternsError } from '../core/errors.js';
import { assertWellFormed } from '../core/validation.js';
import { wrapMethod, type TypedMethodDecorator } from '../core/method-wrapper.js';
import { RateLimitExceededException, waitFor } from './ratelimit.exception.js';
import type { MethodRateLimitPolicy, RateLimitPolicy } from './ratelimit.options.js';
import { assertDistinctNames, resolvePolicy, toCost, type ResolvedPolicy } from './ratelimit.options-validator.js';
import { RateLimitService } from './ratelimit.service.js';

/** Metadata: the HTTP policies of a controller or handler (read by RateLimitGuard). */
export const RATE_LIMIT_POLICIES = 'redis-patterns:rate-limit:policies';
/** Metadata: the policies declared on the target itself (not inherited). */
const DECLARED_POLICIES = 'redis-patterns:rate-limit:declared';
/** Metadata: `true` (skip every policy) or the names of the policies to skip. */
export const SKIP_RATE_LIMIT = 'redis-patterns:rate-limit:skip';

/** The method policies of each wrapped method, so stacked `@RateLimit`s share one wrapper (and one decision). */
const methodPolicies = new WeakMap<object, ResolvedPolicy[]>();

/**
 * Limits a controller or an HTTP handler (enforced by `RateLimitGuard`), or, with `key`, a method
 * of any provider (enforced on every call). Several `@RateLimit`s with different names stack; all
 * of them are checked in one round trip, and none is debited unless all allow the call.
 * Policies are validated when the class is loaded, so a bad one fails at startup. A method with
 * a `key` policy always returns a Promise.
 *
 * @example
 * @Controller('search')
 * @UseGuards(RateLimitGuard)
 * @RateLimit({ name: 'per-second', limit: 10, window: '1s' })
 * @RateLimit({ name: 'per-hour', limit: 1000, window: '1h' })
 * export class SearchController { ... }
 *
 * @Injectable()
 * export class PartnerClient {
 *   @RateLimit<[string]>({ key: (tenant) => tenant, limit: 5, window: '1s', onLimit: 'wait' })
 *   async send(tenant: string) { ... }
 * }
 */
export function RateLimit(policy: RateLimitPolicy): ClassDecorator & MethodDecorator;
export function RateLimit<A extends unknown[]>(policy: MethodRateLimitPolicy<A>): TypedMethodDecorator<A>;
export function RateLimit(policy: RateLimitPolicy | MethodRateLimitPolicy<never[]>): ClassDecorator & MethodDecorator {
  return ((target: object, propertyKey?: string | symbol, descriptor?: PropertyDescriptor) => {
    const className = descriptor ? (target as { constructor: { name: string } }).constructor.name : (target as { name: string }).name;
    const where = `@RateLimit on ${className}${descriptor ? `.${String(propertyKey)}` : ''}`;
    const resolved = resolvePolicy(policy, where);
    if (!descriptor) {
      if (resolved.key)
        throw new InvalidOptionError(
          `${where}.key`,
          'no `key` on a class (use `by` for HTTP handlers, or put the policy on a method)',
          resolved.key,
        );
      addPolicy(target, resolved, where);
      return;
    }
    if (!resolved.key) {
      addPolicy(descriptor.value as object, resolved, where);
      return descriptor;
    }
    const stacked = methodPolicies.get(descriptor.value as object);
    if (stacked) {
      assertDistinctNames([...stacked.map((existing) => existing.name), resolved.name], where);
      stacked.push(resolved);
      return descriptor;
    }
    const policies = [resolved];
    wrapMethod('RateLimit', RateLimitService, target, propertyKey!, descriptor, (service, call, args, method) =>
      limitCall(service, policies, args, `${method.className}.${method.methodName}`, where, call),
    );
    methodPolicies.set(descriptor.value as object, policies);
    return descriptor;
  }) as ClassDecorator & MethodDecorator;
}

/**
 * Skips rate limiting for a controller or handler: every policy, or only the named ones.
 * @example
 * @Get('health')
 * @SkipRateLimit()
 * health() { ... }
 */
export function SkipRateLimit(...names: string[]): ClassDecorator & MethodDecorator {
  return ((target: object, _propertyKey?: string | symbol, descriptor?: PropertyDescriptor) => {
    Reflect.defineMetadata(SKIP_RATE_LIMIT, names.length === 0 ? true : names, descriptor ? (descriptor.value as object) : target);
    return descriptor;
  }) as ClassDecorator & MethodDecorator;
}

/** Adds a policy to a class or handler. A subclass keeps its parent's policies, except those it declares again by name. */
function addPolicy(target: object, policy: ResolvedPolicy, where: string): void {
  const declared: ResolvedPolicy[] = [...(Reflect.getOwnMetadata(DECLARED_POLICIES, target) ?? []), policy];
  assertDistinctNames(
    declared.map((existing) => existing.name),
    where,
  );
  Reflect.defineMetadata(DECLARED_POLICIES, declared, target);
  const inherited: ResolvedPolicy[] = Reflect.getMetadata(RATE_LIMIT_POLICIES, Object.getPrototypeOf(target) as object) ?? [];
  const names = new Set(declared.map((existing) => existing.name));
  Reflect.defineMetadata(RATE_LIMIT_POLICIES, [...inherited.filter((parent) => !names.has(parent.name)), ...declared], target);
}

/** Decides a call of a limited method; over the limit it throws, or waits while every rejecting policy says `wait`. */
async function limitCall(
  service: RateLimitService,
  policies: readonly ResolvedPolicy[],
  args: unknown[],
  scope: string,
  where: string,
  call: () => unknown,
): Promise<unknown> {
  const checks = policies.map((policy) => ({
    key: service.keyOf(callerKey(policy, args, where), scope, policy),
    policy,
    cost: callCost(policy, args, where),
  }));
  const deadline = Date.now() + Math.min(...policies.map((policy) => policy.maxWaitMs));
  for (;;) {
    const decisions = await service.decide(checks);
    const rejected = decisions.filter((decision) => !decision.allowed);
    if (rejected.length === 0) return call();
    const waitMs = waitFor(rejected);
    const mayWait = rejected.every((decision) => policies.find((policy) => policy.name === decision.policy)?.onLimit === 'wait');
    if (!mayWait || waitMs === undefined || Date.now() + waitMs > deadline) throw new RateLimitExceededException(decisions);
    await new Promise((resolve) => setTimeout(resolve, Math.max(1, waitMs)));
  }
}

function callerKey(policy: ResolvedPolicy, args: unknown[], where: string): string {
  let key: unknown;
  try {
    key = (policy.key as (...input: unknown[]) => unknown)(...args);
  } catch (error) {
    throw new RedisPatternsError(`${where}: the key function of policy "${policy.name}" threw: ${(error as Error)?.message ?? error}`, {
      cause: error,
    });
  }
  if (typeof key !== 'string' || key.length === 0)
    throw new InvalidOptionError(`${where}.key`, 'a function returning a non-empty string', key);
  assertWellFormed(`${where}.key`, key);
  return key;
}

function callCost(policy: ResolvedPolicy, args: unknown[], where: string): number {
  const cost = typeof policy.cost === 'function' ? (policy.cost as (...input: unknown[]) => unknown)(...args) : policy.cost;
  return toCost(cost, `${where}.cost`);
}
