import { describe, expect, it } from 'vitest';
import { RandomTokens } from '../../lib/core/random-tokens.js';

describe('RandomTokens', () => {
  it('hands out tokens of its size and encoding, all different, across several refills of its pool', () => {
    const hex = new RandomTokens(16, 'hex', 8);
    const tokens = Array.from({ length: 1_000 }, () => hex.next());
    expect(new Set(tokens).size).toBe(1_000);
    for (const token of tokens) expect(token).toMatch(/^[0-9a-f]{32}$/);
    const base64url = new RandomTokens(9, 'base64url', 8);
    const short = Array.from({ length: 1_000 }, () => base64url.next());
    expect(new Set(short).size).toBe(1_000);
    for (const token of short) expect(token).toMatch(/^[A-Za-z0-9_-]{12}$/);
  });
});
