import type { Command, Redis } from 'ioredis';
import { RedisPatternsError } from './errors.js';
import { isCluster, type RedisClient } from './redis-client.js';

/** A command got no reply within `commandTimeout`. It may still have run on the server. */
export class CommandTimeoutError extends RedisPatternsError {
  constructor(
    readonly command: string,
    readonly timeoutMs: number,
  ) {
    super(`Redis command ${command.toUpperCase()} got no reply within the commandTimeout of ${timeoutMs}ms.`);
  }
}

/**
 * Applies `commandTimeout` to a client the module created, with one timer per client instead of
 * ioredis's one `setTimeout` per command, which costs several percent of throughput on a busy
 * client. Commands are queued in the order they are sent, which is also the order of their
 * deadlines; a timer ticking ten times per timeout (every 10 to 250 ms) rejects each command
 * still unanswered past its deadline. A command therefore fails between `timeoutMs` and one tick
 * later, like with ioredis's own timeout the command is not withdrawn from the server.
 */
export function enforceCommandTimeout(client: RedisClient, timeoutMs: number): void {
  const deadlines = new DeadlineQueue(timeoutMs);
  const cluster = isCluster(client);
  const send = client.sendCommand as (this: RedisClient, command: Command, ...rest: unknown[]) => unknown;
  client.sendCommand = function sendWithDeadline(this: RedisClient, command: Command, ...rest: unknown[]) {
    deadlines.add(command);
    if (cluster) (command as ThroughCluster)[THROUGH_CLUSTER] = true;
    return send.call(this, command, ...rest);
  } as RedisClient['sendCommand'];
  // Commands sent to one node of a Cluster (a SCAN on every master) get the same deadline.
  if (cluster) client.on('+node', (node: Redis) => deadlinesForNode(node, deadlines));
  const timer = setInterval(() => deadlines.expire(), Math.min(250, Math.max(10, Math.round(timeoutMs / 10))));
  timer.unref();
  client.once('end', () => clearInterval(timer));
}

/** Marks a command the Cluster itself was given (and so already has its deadline). */
const THROUGH_CLUSTER = Symbol('RedisPatterns:throughCluster');
type ThroughCluster = Command & { [THROUGH_CLUSTER]?: true };

function deadlinesForNode(node: Redis, deadlines: DeadlineQueue): void {
  const send = node.sendCommand as (this: Redis, command: Command, ...rest: unknown[]) => unknown;
  node.sendCommand = function sendWithDeadline(this: Redis, command: Command, ...rest: unknown[]) {
    if (!(command as ThroughCluster)[THROUGH_CLUSTER]) deadlines.add(command);
    return send.call(this, command, ...rest);
  } as Redis['sendCommand'];
}

/** Sent commands with their deadlines, oldest first. Answered commands leave from the front. */
class DeadlineQueue {
  /**
   * Answered commands leave from the front, once every command sent before them is answered or
   * expired (one behind a slow command stays until that one settles or passes its deadline, at most
   * `timeoutMs` and a tick); their slots are cleared as they leave, so their arguments and replies
   * do not outlive them.
   */
  private commands: (Command | undefined)[] = [];
  private deadlines: number[] = [];
  private head = 0;

  constructor(private readonly timeoutMs: number) {}

  add(command: Command): void {
    this.dropAnswered();
    this.commands.push(command);
    this.deadlines.push(Date.now() + this.timeoutMs);
  }

  expire(): void {
    const now = Date.now();
    for (; this.head < this.commands.length; this.head++) {
      const command = this.commands[this.head] as Command;
      if (!command.isSettled) {
        if (this.deadlines[this.head] > now) break;
        command.reject(new CommandTimeoutError(command.name, this.timeoutMs));
      }
      this.commands[this.head] = undefined;
    }
    this.compact();
  }

  private dropAnswered(): void {
    while (this.head < this.commands.length && (this.commands[this.head] as Command).isSettled) this.commands[this.head++] = undefined;
    this.compact();
  }

  private compact(): void {
    if (this.head === this.commands.length) {
      this.commands.length = 0;
      this.deadlines.length = 0;
      this.head = 0;
    } else if (this.head >= 1024) {
      this.commands.splice(0, this.head);
      this.deadlines.splice(0, this.head);
      this.head = 0;
    }
  }
}
