import { ConflictException, HttpStatus } from '@nestjs/common';

/**
 * A session was not started (or not given its user) because the user already has
 * `maxSessionsPerUser` live sessions and `onLimit` is `'reject'`. A Nest `ConflictException`: a
 * controller answers 409 Conflict, the state of the user's sessions being what stands in the way
 * (the user may end one, and try again). `statusCode` is set too, so express-session's
 * `next(error)` answers 409 in Express's own error handler. The user id is a property, never in
 * the message (which logs may keep).
 *
 * @example
 * try { session = await this.sessions.create(user.id); }
 * catch (error) { if (error instanceof SessionLimitError) return { tooManyDevices: error.limit }; throw error; }
 */
export class SessionLimitError extends ConflictException {
  readonly statusCode = HttpStatus.CONFLICT;

  constructor(
    /** The `maxSessionsPerUser` in force. */
    readonly limit: number,
    readonly userId: string,
  ) {
    super({
      statusCode: HttpStatus.CONFLICT,
      error: 'Conflict',
      message: `The user already has ${limit} live sessions, the most that maxSessionsPerUser allows: end one to start another.`,
      limit,
    });
    this.name = 'SessionLimitError';
  }
}
