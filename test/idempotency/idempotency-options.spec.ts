import { Controller, Post } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { describe, expect, it } from 'vitest';
import { Idempotent, InvalidOptionError, RedisPatternsModule, type IdempotencyOptions } from '../../lib/index.js';
import { resolveIdempotencyOptions } from '../../lib/idempotency/idempotency.options-validator.js';
import { standaloneConnection, uniquePrefix } from '../support/testing-app.js';

describe('idempotency options', () => {
  it('has its defaults in one place', () => {
    const resolved = resolveIdempotencyOptions(undefined);
    expect(resolved).toMatchObject({
      configured: false,
      ttlMs: 86_400_000,
      leaseMs: 30_000,
      header: 'idempotency-key',
      headerName: 'Idempotency-Key',
      required: false,
      maxKeyLength: 255,
      replayedHeader: 'Idempotent-Replayed',
      storeClientErrors: true,
      retryAfterSeconds: 1,
      maxResponseBytes: 1_048_576,
      onStoreError: 'closed',
    });
    expect([...resolved.replayHeaders]).toContain('location');
    expect(resolved.user({ headers: {}, user: { sub: 'ann' } })).toBe('ann');
    expect(resolved.user({ headers: {} })).toBeUndefined();
    expect(resolveIdempotencyOptions({ header: 'X-Request-Id', retryAfter: '1500ms', replayHeaders: ['Content-Type'] })).toMatchObject({
      configured: true,
      header: 'x-request-id',
      headerName: 'X-Request-Id',
      retryAfterSeconds: 2,
      replayHeaders: new Set(['content-type']),
    });
  });

  it.each<[IdempotencyOptions, string, string]>([
    [{ ttl: 0 }, 'idempotency.ttl', 'a duration greater than 0'],
    [{ lease: '1y' as never }, 'idempotency.lease', "a non-negative number of milliseconds or a string such as '250ms'"],
    [{ header: 'Idempotency Key' }, 'idempotency.header', 'an HTTP header name'],
    [{ replayedHeader: '' }, 'idempotency.replayedHeader', 'an HTTP header name'],
    [{ replayHeaders: ['location', 'Content-Length'] }, 'idempotency.replayHeaders[1]', 'a header that does not frame the message'],
    [{ replayHeaders: ['idempotent-replayed'] }, 'idempotency.replayHeaders[0]', 'another header than the replayedHeader'],
    [{ replayHeaders: 'etag' as never }, 'idempotency.replayHeaders', 'an array of header names'],
    [{ maxKeyLength: 0 }, 'idempotency.maxKeyLength', 'a positive integer'],
    [{ maxResponseBytes: 1.5 }, 'idempotency.maxResponseBytes', 'a positive integer'],
    [{ storeClientErrors: 'yes' as never }, 'idempotency.storeClientErrors', 'true or false'],
    [{ required: 1 as never }, 'idempotency.required', 'true or false'],
    [{ onStoreError: 'fail' as never }, 'idempotency.onStoreError', "'open' or 'closed'"],
    [{ user: 'id' as never }, 'idempotency.user', 'a function of the request'],
    [{ ttls: '1h' } as never, 'idempotency.ttls', 'one of the known options'],
  ])('%j fails startup naming %s', async (idempotency, option, expected) => {
    const compiling = Test.createTestingModule({
      imports: [RedisPatternsModule.forRoot({ connection: standaloneConnection(), keyPrefix: uniquePrefix(), idempotency })],
    }).compile();
    await expect(compiling).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(compiling).rejects.toMatchObject({ option, expected: expect.stringContaining(expected) });
  });

  it('checks @Idempotent() options when the class is loaded, naming the route', () => {
    const declare = (options: object) => {
      @Controller()
      class Payments {
        @Post()
        @Idempotent(options as never)
        pay() {}
      }
      return Payments;
    };
    expect(() => declare({ ttl: 'soon' })).toThrow(InvalidOptionError);
    expect(() => declare({ ttl: 'soon' })).toThrow(/Invalid option "@Idempotent on Payments\.pay\.ttl"/);
    expect(() => declare({ header: 'X-Key' })).toThrow(
      /Invalid option "@Idempotent on Payments\.pay\.header": expected one of the known options/,
    );
    expect(() => declare({ required: 'yes' })).toThrow(/"@Idempotent on Payments\.pay\.required": expected true or false/);
    expect(() => declare({ lease: '5s', storeClientErrors: false, onStoreError: 'open' })).not.toThrow();
  });
});
