import { waitFor } from './ratelimit.exception.js';
import type { RateLimitDecision, RateLimitHeaders } from './ratelimit.options.js';

/**
 * The headers of a decided request:
 * - IETF (draft-ietf-httpapi-ratelimit-headers): `RateLimit-Policy: "name";q=<limit>;w=<window s>`
 *   and `RateLimit: "name";r=<remaining>;t=<s until the quota is back>`, one list member per policy;
 * - legacy: `X-RateLimit-Limit`, `-Remaining` and `-Reset` (seconds) of the most restrictive policy;
 * - `Retry-After` (seconds, rounded up) when the request is rejected and could pass later.
 * No limit headers when Redis was unavailable and the request was admitted unchecked.
 */
export function rateLimitHeaders(decisions: readonly RateLimitDecision[], kind: RateLimitHeaders): [string, string][] {
  const headers: [string, string][] = [];
  const checked = decisions.filter((decision) => !decision.unavailable);
  if (kind !== false && checked.length > 0) {
    if (kind === 'ietf' || kind === 'both') {
      headers.push(['RateLimit-Policy', checked.map((d) => `${item(d.policy)};q=${d.limit};w=${seconds(d.windowMs)}`).join(', ')]);
      headers.push(['RateLimit', checked.map((d) => `${item(d.policy)};r=${d.remaining};t=${seconds(d.resetMs)}`).join(', ')]);
    }
    if (kind === 'legacy' || kind === 'both') {
      const tightest = checked.reduce((a, b) =>
        b.remaining < a.remaining || (b.remaining === a.remaining && b.resetMs > a.resetMs) ? b : a,
      );
      headers.push(
        ['X-RateLimit-Limit', String(tightest.limit)],
        ['X-RateLimit-Remaining', String(tightest.remaining)],
        ['X-RateLimit-Reset', String(seconds(tightest.resetMs))],
      );
    }
  }
  const rejected = decisions.filter((decision) => !decision.allowed);
  const retryAfterMs = rejected.length > 0 ? waitFor(rejected) : undefined;
  if (retryAfterMs !== undefined) headers.push(['Retry-After', String(seconds(retryAfterMs))]);
  return headers;
}

/** A policy name as a Structured Field string (printable ASCII only). */
function item(name: string): string {
  // One test for the usual name, which has nothing to replace.
  if (!NEEDS_ESCAPE.test(name)) return `"${name}"`;
  return `"${name.replace(/[^\x20-\x7e]/g, '?').replace(/[\\"]/g, '\\$&')}"`;
}

const NEEDS_ESCAPE = /[^\x20-\x7e]|[\\"]/;

function seconds(ms: number): number {
  return Math.ceil(ms / 1000);
}
