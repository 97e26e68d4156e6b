import { defineFeature } from '../core/feature.js';
import { SessionCookies } from './session-cookies.js';
import { SessionGuard } from './session.guard.js';
import { SESSION_OPTIONS, type SessionOptions } from './session.options.js';
import { resolveSessionOptions, type ResolvedSessionOptions } from './session.options-validator.js';
import { SessionService } from './session.service.js';

/** Sessions: `SessionService`, `SessionCookies` and `SessionGuard`, with the `session` section. Session keys must not be evicted. */
export const sessionFeature = defineFeature({
  name: 'sessions',
  section: { name: 'session', token: SESSION_OPTIONS, resolve: (given: SessionOptions | undefined) => resolveSessionOptions(given) },
  providers: [SessionService, SessionCookies, SessionGuard],
  exports: [SessionService, SessionCookies, SessionGuard],
  keys: { durability: 'durable', inUse: (ref) => ref.get<ResolvedSessionOptions>(SESSION_OPTIONS).configured },
  // A session, and a user's index of sessions.
  keySegments: ['s', 'su'],
});
