import type { Logger } from '@nestjs/common';
import { DEFAULT_CONNECTION } from '../core/core.options.js';
import { OutageLog } from '../core/outage-log.js';
import { isCluster } from '../core/redis-client.js';
import type { RedisConnections } from '../core/redis-connections.service.js';
import type { ResolvedLockOptions } from './lock.options-validator.js';
import { RedlockStore } from './lock.redlock-store.js';
import type { ReleaseLog } from './lock.release-retries.js';
import { SingleNodeStore, type LockStore } from './lock.store.js';

/** Where plain locks live, and what every other kind of lock on the main connection shares. */
export interface LockWiring {
  /** Plain locks: on the main connection, or Redlock's over `lock.redlock.connections`. */
  store: LockStore;
  /** Whether a connection plain locks use is a Cluster (keys of several locks then share a tag). */
  cluster: boolean;
  /** The main connection's outage log, shared by its stores so that an outage is logged once. */
  mainOutage: OutageLog;
  /** Where the stores of a connection log the retried releases they give up. */
  releaseLog(connection: string): ReleaseLog;
}

/**
 * The lock stores of `settings`: one outage log per connection, so that with Redlock each
 * server's outage is logged once.
 */
export function wireLocks(connections: RedisConnections, settings: ResolvedLockOptions, logger: Logger): LockWiring {
  const { redlock } = settings;
  const releaseLog = (connection: string): ReleaseLog => ({ connection, warn: (message: string) => logger.warn(message) });
  const mainOutage = new OutageLog(
    logger,
    'locks',
    'locks are not granted (LockNotAcquiredError, 503) and releases wait',
    DEFAULT_CONNECTION,
  );
  const storeOn = (name: string, outage: OutageLog) => new SingleNodeStore(connections.get(name), outage, releaseLog(name));
  if (!redlock) return { store: storeOn(DEFAULT_CONNECTION, mainOutage), cluster: isCluster(connections.get()), mainOutage, releaseLog };
  const stores = redlock.connections.map((name) =>
    storeOn(name, new OutageLog(logger, 'locks', 'this server grants no locks and its releases wait', name)),
  );
  return {
    store: new RedlockStore(stores, redlock.driftFactor),
    cluster: redlock.connections.some((name) => isCluster(connections.get(name))),
    mainOutage,
    releaseLog,
  };
}
