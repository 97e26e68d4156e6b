import { randomUUID } from 'node:crypto';
import { mapBounded } from '../../../lib/core/bounded.js';
import { SessionLimitError, SessionService, type OnSessionLimit } from '../../../lib/index.js';
import { RedisSessionStore } from '../../../lib/session/express-session.store.js';
import { serveCommands, startWorkerApp } from './worker-app.js';

/**
 * Logins in their own process, for multi-process session tests (the module's options come from
 * the test, see ../app-instances.ts). Reads one JSON command per line on stdin and answers one
 * JSON line on stdout:
 * - {"op":"login","userId":"u","times":10,"concurrency":10,"onLimit":"evict-oldest","store":false}
 *   logs `userId` in `times` times, `concurrency` at a time, with `SessionService.create` (or,
 *   with `store`, by saving a new session with the user through `RedisSessionStore`), under the
 *   module's limit with `onLimit` if given; answers the handles of the sessions started and how
 *   many were refused with `SessionLimitError`.
 */
const app = await startWorkerApp();
const sessions = app.get(SessionService);
const store = new RedisSessionStore(sessions);

type Command = { id: number; op: 'login'; userId: string; times: number; concurrency: number; onLimit?: OnSessionLimit; store?: boolean };

async function login(command: Command, n: number): Promise<string | null> {
  try {
    if (!command.store) return (await sessions.create(command.userId, { n, pid: process.pid }, { onLimit: command.onLimit })).handle;
    const sid = randomUUID();
    await store.set(sid, { userId: command.userId, cookie: { originalMaxAge: null } } as never);
    return RedisSessionStore.handleOf(sid);
  } catch (error) {
    if (error instanceof SessionLimitError) return null;
    throw error;
  }
}

async function run(command: Command): Promise<unknown> {
  const results = await mapBounded(
    Array.from({ length: command.times }, (_, n) => n),
    command.concurrency,
    (n) => login(command, n),
  );
  return { handles: results.filter((handle) => handle !== null), refused: results.filter((handle) => handle === null).length };
}

serveCommands(app, run);
