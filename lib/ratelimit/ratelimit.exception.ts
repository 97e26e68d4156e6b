import { HttpException, HttpStatus } from '@nestjs/common';
import type { RateLimitDecision } from './ratelimit.options.js';

/**
 * A call over its limit: HTTP 429, with `retryAfterMs` in the body (`Retry-After` is set as a
 * header on HTTP responses). Outside HTTP it is thrown as it is.
 */
export class RateLimitExceededException extends HttpException {
  /** The policies that rejected the call. */
  readonly rejectedBy: readonly RateLimitDecision[];
  /** How long to wait before the call could pass; `undefined` when its cost can never fit. */
  readonly retryAfterMs: number | undefined;

  constructor(decisions: readonly RateLimitDecision[]) {
    const rejectedBy = decisions.filter((decision) => !decision.allowed);
    const retryAfterMs = waitFor(rejectedBy);
    super(
      {
        statusCode: HttpStatus.TOO_MANY_REQUESTS,
        message: `Rate limit exceeded (${rejectedBy.map((decision) => decision.policy).join(', ')})`,
        retryAfterMs: retryAfterMs ?? null,
      },
      HttpStatus.TOO_MANY_REQUESTS,
    );
    this.rejectedBy = rejectedBy;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The wait after which every rejecting policy could allow the call, or undefined if one never can. */
export function waitFor(rejectedBy: readonly RateLimitDecision[]): number | undefined {
  let longest = 0;
  for (const decision of rejectedBy) {
    if (decision.retryAfterMs === undefined) return undefined;
    longest = Math.max(longest, decision.retryAfterMs);
  }
  return longest;
}
