import { BadRequestException, ConflictException, UnprocessableEntityException } from '@nestjs/common';

/**
 * A route that requires an idempotency key got a request without one: 400, naming the header.
 *
 * @example
 * // POST /payments without the header, on a route with @Idempotent({ required: true }):
 * // 400 {"statusCode":400,"message":"This request needs an Idempotency-Key header ...","error":"Bad Request"}
 */
export class IdempotencyKeyMissingError extends BadRequestException {
  constructor(readonly header: string) {
    super(`This request needs an ${header} header: a unique key (such as a UUID) that retries of the request repeat.`);
    this.name = 'IdempotencyKeyMissingError';
  }
}

/**
 * An idempotency key that cannot be used: empty, too long, not printable ASCII, or several keys
 * at once. 400; `reason` says what is wrong, `argument` names the header or argument.
 *
 * @example
 * // Idempotency-Key: a key with a tab	in it
 * // 400 Invalid Idempotency-Key: expected printable ASCII (a bare key, or an RFC 8941 string in quotes)
 */
export class IdempotencyKeyInvalidError extends BadRequestException {
  constructor(
    readonly argument: string,
    readonly reason: string,
  ) {
    super(`Invalid ${argument}: ${reason}`);
    this.name = 'IdempotencyKeyInvalidError';
  }
}

/**
 * A request with the key of one still running (on this instance or another): 409. Retry after
 * `retryAfterMs` (an HTTP response carries it as `Retry-After`); by then the first has usually
 * finished, and its response is replayed.
 *
 * @example
 * catch (error) { if (error instanceof IdempotencyConflictError) await sleep(error.retryAfterMs); }
 */
export class IdempotencyConflictError extends ConflictException {
  constructor(
    readonly key: string,
    readonly retryAfterMs: number,
  ) {
    super('A request with this idempotency key is still being processed; retry later.');
    this.name = 'IdempotencyConflictError';
  }
}

/**
 * The key was used before for a different request (another method, path, body or user): 422.
 * The client must send a new key for a new request.
 *
 * @example
 * // the same Idempotency-Key with {"amountCents":300}, then with {"amountCents":500}: the second gets
 * // 422 This idempotency key was already used for a different request; send a new key for a new request.
 */
export class IdempotencyKeyReusedError extends UnprocessableEntityException {
  constructor(readonly key: string) {
    super('This idempotency key was already used for a different request; send a new key for a new request.');
    this.name = 'IdempotencyKeyReusedError';
  }
}
