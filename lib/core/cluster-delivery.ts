import type { Cluster, Command, Redis } from 'ioredis';
import { RedisPatternsError } from './errors.js';

/**
 * A command was written to a Cluster node whose connection closed before the reply came: it may
 * have run there (and reached the replica that takes over), so it is not sent again.
 */
export class CommandInFlightLostError extends RedisPatternsError {
  constructor() {
    super('The connection to a Redis Cluster node closed before it answered; the command may have run, so it is not sent again.');
  }
}

/** What the module uses of a Cluster node connection beyond ioredis's typed API. */
interface NodeInternals {
  sendCommand(command: Command, ...rest: unknown[]): unknown;
  flushQueue(error: Error, options?: { offlineQueue?: boolean; commandQueue?: boolean }): void;
}

/** ioredis's message for a command failed by a closed connection, which a Cluster retries. */
const CONNECTION_CLOSED = 'Connection is closed.';

/**
 * Makes a Cluster the module created deliver each command at most once, as its standalone connections do
 * (`autoResendUnfulfilledCommands: false`). ioredis retries a command that failed with
 * "Connection is closed." on the slot's new owner after a failover: right for one that never left
 * the client, wrong for one already written, which may have run. And it retries a command Redis
 * refused (CLUSTERDOWN, TRYAGAIN) after a delay without checking whether the command has failed
 * meanwhile (on `commandTimeout`). So, on every node connection of the Cluster:
 * - commands in flight when the connection closes fail with {@link CommandInFlightLostError},
 *   which is not retried; those never written keep being retried;
 * - a command that has already failed is never sent.
 */
export function deliverAtMostOnce(cluster: Cluster): void {
  cluster.on('+node', (node: Redis) => {
    const internals = node as unknown as NodeInternals;
    const send = internals.sendCommand;
    internals.sendCommand = function sendUnlessSettled(this: NodeInternals, command: Command, ...rest: unknown[]) {
      if (command.isSettled) return command.promise;
      return send.call(this, command, ...rest);
    };
    const flush = internals.flushQueue;
    internals.flushQueue = function flushInFlightAsLost(this: NodeInternals, error: Error, options = {}) {
      if (error.message !== CONNECTION_CLOSED || options.commandQueue === false) return flush.call(this, error, options);
      // Queued but never written: ioredis may retry them. Written (the command queue): lost.
      flush.call(this, error, { ...options, commandQueue: false });
      flush.call(this, new CommandInFlightLostError(), { offlineQueue: false, commandQueue: true });
    };
  });
}
