import { CommandTimeoutError } from './command-timeout.js';
import { RedisPatternsError } from './errors.js';

/**
 * Whether an error means Redis could not answer (down, unreachable, failing over, out of memory),
 * as opposed to a bug (a CROSSSLOT key, a wrong type, a corrupt value), which features throw
 * rather than treat as an outage.
 */
export function isStoreFailure(error: unknown): boolean {
  if (error instanceof CommandTimeoutError || (error as Error)?.name === 'MaxRetriesPerRequestError') return true;
  if (error instanceof RedisPatternsError) return error.message.startsWith('the Redis connection is');
  const message = (error as Error)?.message ?? '';
  return /^(Connection is closed|Stream isn't writeable|LOADING|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|READONLY|OOM|None of startup nodes|Failed to refresh slots)|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH/.test(message);
}
