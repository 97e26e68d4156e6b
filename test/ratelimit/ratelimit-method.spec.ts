import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidOptionError, RateLimit, RateLimitExceededException, RateLimitService, RedisPatternsError } from '../../lib/index.js';
import { startContext, topologies } from '../support/testing-app.js';

const run = `${Date.now()}`;

@Injectable()
class Partner {
  calls: string[] = [];

  @RateLimit<[string]>({ key: (tenant) => `${run}:${tenant}`, limit: 2, window: '300ms', algorithm: 'fixed-window', onLimit: 'wait' })
  async notify(tenant: string): Promise<string> {
    this.calls.push(tenant);
    return `notified ${tenant}`;
  }

  @RateLimit<[string]>({
    key: (tenant) => `${run}:${tenant}`,
    limit: 1,
    window: '1h',
    algorithm: 'fixed-window',
    onLimit: 'wait',
    maxWait: '100ms',
  })
  async impatient(tenant: string): Promise<string> {
    return tenant;
  }

  @RateLimit<[string, number]>({
    name: 'per-user',
    key: (user) => `${run}:${user}`,
    limit: 3,
    window: '1h',
    algorithm: 'fixed-window',
    cost: (_user, units) => units,
  })
  @RateLimit<[string, number]>({ name: 'shared', key: () => `${run}:everyone`, limit: 4, window: '1h', algorithm: 'fixed-window' })
  async spend(_user: string, units: number): Promise<number> {
    return units;
  }

  @RateLimit<[string]>({ key: (id) => id, limit: 5, window: '1s' })
  keyed(id: string): string {
    return id;
  }
}

describe.each(topologies)('@RateLimit on a provider method on $topology', ({ connection }) => {
  let app: INestApplicationContext;
  let partner: Partner;
  beforeAll(async () => {
    app = await startContext({ connection: connection() }, { providers: [Partner] });
    partner = app.get(Partner);
  });
  afterAll(() => app.close());

  it('with onLimit: "wait", delays calls over the limit until they are allowed, and runs each once', async () => {
    const started = Date.now();
    const results = await Promise.all(['a', 'a', 'a', 'a', 'a'].map((tenant) => partner.notify(tenant)));
    expect(results).toEqual(Array(5).fill('notified a'));
    expect(partner.calls).toEqual(['a', 'a', 'a', 'a', 'a']);
    // Two per 300 ms window: the fifth call waited for the third window at least.
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  });

  it('throws RateLimitExceededException when the wait would pass maxWait', async () => {
    await partner.impatient('b');
    const error = await partner.impatient('b').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RateLimitExceededException);
    expect((error as RateLimitExceededException).retryAfterMs).toBeGreaterThan(100);
    expect((error as RateLimitExceededException).getStatus()).toBe(429);
  });

  it('decides stacked policies with different keys together: a call rejected by one spends nothing of the other', async () => {
    expect(await partner.spend('u1', 3)).toBe(3);
    // per-user u1 is spent; `shared` has 3 left, and must keep them.
    const error = await partner.spend('u1', 1).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RateLimitExceededException);
    expect((error as RateLimitExceededException).rejectedBy.map((decision) => decision.policy)).toEqual(['per-user']);
    for (const user of ['u2', 'u4', 'u5']) expect(await partner.spend(user, 1)).toBe(1);
    await expect(partner.spend('u3', 1)).rejects.toThrow('Rate limit exceeded (shared)');
    // ...and u3 was refunded on per-user when `shared` rejected it.
    const limits = app.get(RateLimitService);
    const perUser = limits.resolve({ name: 'per-user', limit: 3, window: '1h', algorithm: 'fixed-window' });
    const [u3] = await limits.decide([{ key: limits.keyOf(`${run}:u3`, 'Partner.spend', perUser), policy: perUser, cost: 3 }]);
    expect(u3).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('names the method when its key function fails or returns no string', async () => {
    await expect(Promise.resolve().then(() => partner.keyed(undefined as never))).rejects.toThrow(
      new InvalidOptionError('@RateLimit on Partner.keyed.key', 'a function returning a non-empty string', undefined),
    );
    await expect(Promise.resolve().then(() => partner.keyed('id\ud800'))).rejects.toMatchObject({
      name: 'MalformedTextError',
      option: '@RateLimit on Partner.keyed.key',
    });
  });
});

describe('bad @RateLimit policies fail when the class is defined', () => {
  it('rejects a key on a class, duplicate names, bad numbers and unknown options, naming the place', () => {
    expect(() => RateLimit({ key: () => 'x', limit: 1, window: '1s' } as never)(class Search {})).toThrow(
      /"@RateLimit on Search.key": expected no `key` on a class/,
    );
    expect(() => {
      class Login {
        @RateLimit({ limit: 5, window: '1m' })
        @RateLimit({ limit: 10, window: '1h' })
        post() {}
      }
      return Login;
    }).toThrow(/"@RateLimit on Login.post": expected policies with distinct names \(give each a `name`\), got two named "default"/);
    expect(() => RateLimit({ limit: 1.5, window: '1s' })(class A {})).toThrow(
      /"@RateLimit on A.limit": expected a positive integer, got 1.5/,
    );
    expect(() => RateLimit({ limit: 5, window: '1s', cost: 6 })(class B {})).toThrow(
      /"@RateLimit on B.cost": expected at most the limit \(5\), got 6/,
    );
    expect(() => RateLimit({ limit: 5, window: '1s', cost: 0 })(class C {})).toThrow(
      /"@RateLimit on C.cost": expected an integer of at least 1, got 0/,
    );
    expect(() => RateLimit({ limit: 5, window: '1s', blockFor: -1 } as never)(class D {})).toThrow(/"@RateLimit on D.blockFor"/);
    expect(() => RateLimit({ limit: 5, window: '1s', by: 'header' } as never)(class E {})).toThrow(
      /"@RateLimit on E.by": expected 'ip', 'user' or a function/,
    );
    expect(() => RateLimit({ limit: 5, windw: '1s' } as never)(class F {})).toThrow(
      /"@RateLimit on F.windw": expected one of the known options/,
    );
    expect(() => RateLimit({ limit: 5, window: '1s', onStoreError: 'maybe' } as never)(class G {})).toThrow(
      /"@RateLimit on G.onStoreError": expected 'open' or 'closed'/,
    );
    expect(new InvalidOptionError('x', 'y', 1)).toBeInstanceOf(RedisPatternsError);
  });

  it('rejects bad module options at startup', async () => {
    await expect(startContext({ connection: topologies[0].connection(), rateLimit: { headers: 'all' as never } })).rejects.toThrow(
      /"rateLimit.headers": expected 'both', 'ietf', 'legacy' or false/,
    );
    await expect(
      startContext({ connection: topologies[0].connection(), rateLimit: { policies: [{ limit: 0, window: '1s' }] } }),
    ).rejects.toThrow(/"rateLimit.policies\[0\].limit": expected a positive integer, got 0/);
  });
});
