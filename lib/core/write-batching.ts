import type { Socket } from 'node:net';
// Node's own, not the global: an app's tests that fake the global timers still get their commands sent.
import { setImmediate } from 'node:timers';
import type { Redis } from 'ioredis';
import { isCluster, type RedisClient } from './redis-client.js';

/** What ioredis keeps of its connection: the socket (TLS or not) it writes commands to. */
type WithStream = Redis & { stream?: Socket };

/** Sockets already batched: a reconnect brings a new one, batched on its `connect`. */
const BATCHED = new WeakSet<Socket>();

/**
 * At most this many commands leave in one write. Measured at 64 callers (bench/, the same run for
 * each): with no cap, GETs gained a third but script-bound work lost it (rate-limit decisions 93k/s
 * to 59k/s, semaphores 37k/s to 24k/s), as Redis then sat idle while the client built the whole
 * batch and the client while Redis ran it; with 16, GETs 1.31x the raw client, rate-limit
 * decisions 113k/s, locks 45k/s (4 and 32 did worse on one side or the other).
 */
export const MAX_COMMANDS_PER_WRITE = 16;

/**
 * Sends the commands written in one turn of the event loop to the server in a few writes, as
 * node-redis does: the socket is corked at the first command written in a turn and uncorked in
 * that turn's check phase (`setImmediate`, after the I/O callbacks of its poll phase and their
 * promise jobs), or as soon as {@link MAX_COMMANDS_PER_WRITE} are waiting, so Redis starts on them
 * while the rest are built. ioredis writes each command with a `write()` of its own, one system
 * call each, which at 64 commands in flight took 40-56% of the client's CPU (profiled, bench/).
 * Uncorking at the end of each tick instead (`process.nextTick`) batched only the commands of one
 * callback: an HTTP server handles each request in an I/O callback of its own, and its
 * single-command writes took 26% of the server's CPU on a cached Fastify route (10.6% of writevs
 * once batched by turn). Unlike auto-pipelining, no pipeline is built and nothing waits for a later
 * turn, and the order of commands on the connection is unchanged.
 *
 * Where commands go one at a time (the last turn that wrote wrote one), a command written while
 * none awaits its reply leaves at once: putting it off to the check phase only added to its latency
 * (at one caller, 4-7% more cache hits and session reads a second, 14% more lock acquisitions and
 * releases). Not after a turn of several: at 64 callers a batch of replies often empties the queue
 * before their callers send again, and sending the first of those alone cost cache hits 10%.
 *
 * Applied to the module's own command connections (and to each node of a Cluster), when their
 * socket connects, before any command is written on it.
 */
export function batchWrites(client: RedisClient): void {
  if (isCluster(client)) {
    client.on('+node', (node: Redis) => batchNodeWrites(node));
    return;
  }
  batchNodeWrites(client);
}

function batchNodeWrites(connection: WithStream): void {
  connection.on('connect', () => {
    if (connection.stream) corkEachTurn(connection.stream, connection);
  });
  if (connection.stream) corkEachTurn(connection.stream, connection);
}

function corkEachTurn(socket: Socket, connection: Redis): void {
  if (BATCHED.has(socket)) return;
  BATCHED.add(socket);
  /** Commands written in this turn, and of those, how many wait in the corked socket. */
  let written = 0;
  let waiting = 0;
  /** Whether the last turn that wrote wrote one command: then a command of an idle connection leaves at once. */
  let lone = true;
  const uncork = () => {
    if (waiting === 0) return;
    waiting = 0;
    socket.uncork();
  };
  const endTurn = () => {
    lone = written === 1;
    written = 0;
    uncork();
  };
  const write = socket.write;
  socket.write = function writeInThisTurn(this: Socket, ...args: Parameters<Socket['write']>) {
    if (written++ === 0) {
      setImmediate(endTurn);
      // ioredis queues a command once it is written: an empty queue is an idle connection.
      if (lone && connection.commandQueue.length === 0) return write.apply(this, args);
    }
    if (waiting === 0) this.cork();
    const accepted = write.apply(this, args);
    if (++waiting === MAX_COMMANDS_PER_WRITE) uncork();
    return accepted;
  } as Socket['write'];
}
