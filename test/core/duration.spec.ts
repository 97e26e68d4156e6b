import { describe, expect, it } from 'vitest';
import { InvalidOptionError, toMilliseconds } from '../../lib/index.js';

describe('toMilliseconds', () => {
  it.each([
    [250, 250],
    [0, 0],
    ['250ms', 250],
    ['10s', 10_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1.5s', 1_500],
    ['0.5ms', 1],
    ['2.007s', 2_007],
    ['0.07h', 252_000],
  ] as const)('reads %j as %d ms', (input, expected) => {
    expect(toMilliseconds(input, 'ttl')).toBe(expected);
  });

  it.each([['10'], ['10 sec'], ['-1s'], [''], ['1w'], [-1], [Number.NaN], [Number.POSITIVE_INFINITY], [null], [{}]])(
    'rejects %j with an error naming the option',
    (input) => {
      expect(() => toMilliseconds(input as never, 'cache.ttl')).toThrow(InvalidOptionError);
      expect(() => toMilliseconds(input as never, 'cache.ttl')).toThrow(
        /Invalid option "cache\.ttl": expected a non-negative number of milliseconds or a string such as '250ms'/,
      );
    },
  );
});
