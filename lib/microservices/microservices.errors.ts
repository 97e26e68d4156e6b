import { RedisPatternsError } from '../core/errors.js';

/**
 * No reply to a `send()` of `RedisStreamsClient` came within its `timeout`. The request may still
 * be handled (servers skip it only once its deadline has passed when they read it).
 *
 * @example
 * this.client.send('quote', order).pipe(catchError((error) => (error instanceof RedisStreamsTimeoutError ? of(null) : throwError(() => error))));
 */
export class RedisStreamsTimeoutError extends RedisPatternsError {
  constructor(
    readonly pattern: string,
    readonly timeoutMs: number,
  ) {
    super(`No reply to "${pattern}" within ${timeoutMs}ms.`);
  }
}
