import type { Redis } from 'ioredis';
import { RedisScript } from '../core/redis-script.js';
import { outageOf } from '../core/store-failure.js';
import type { RefusalLog } from './insights.refusals.js';
import { addressOf, unavailableNode, type RedisNodeUnavailable } from './insights.snapshot.js';

/**
 * One command of the slow log, without its arguments: they may hold user data (keys such as
 * `{rl:<email>}`, cached values), so only their count is kept, and how many of them are keys.
 */
export interface RedisSlowlogEntry {
  /** The slow log's own id, increasing. */
  id: number;
  /** When the command ran. */
  time: Date;
  /** How long it ran, in microseconds (the command itself, not the network). */
  durationMicros: number;
  /** Its name, upper-cased, and for commands that have subcommands the subcommand: `'GET'`, `'EVALSHA'`, `'CONFIG SET'`. */
  command: string;
  /** For EVALSHA, the library's script of that SHA1 (`'cache-miss'`) or the SHA1; for FCALL, the function. */
  script?: string;
  /** How many arguments followed the name (and subcommand). */
  argumentCount: number;
  /** How many of the arguments are keys (Redis's `COMMAND GETKEYS`), or null when it cannot tell. */
  keyCount: number | null;
  /** The client's `address:port` and name (`CLIENT SETNAME`), as Redis recorded them. */
  client: { address: string; name: string };
}

/** The slow log of one node, newest first. */
export interface RedisNodeSlowlog {
  node: string;
  available: true;
  entries: RedisSlowlogEntry[];
}

/** What `RedisInsightsService.slowlog(n)` answers: the last n entries of each master, or of the one server. */
export interface RedisSlowlog {
  connection: string;
  nodes: (RedisNodeSlowlog | RedisNodeUnavailable)[];
}

/** Commands whose second word is a subcommand: their name alone would not say what ran. */
const CONTAINERS = new Set([
  'ACL',
  'CLIENT',
  'CLUSTER',
  'COMMAND',
  'CONFIG',
  'FUNCTION',
  'LATENCY',
  'MEMORY',
  'MODULE',
  'OBJECT',
  'PUBSUB',
  'SCRIPT',
  'SLOWLOG',
  'XGROUP',
  'XINFO',
]);

/** What the slow log puts last in place of the arguments past its 32nd. */
const MORE_ARGUMENTS = /^\.\.\. \((\d+) more arguments\)$/;

/** How many `COMMAND GETKEYS` go in one pipeline. */
const GETKEYS_CHUNK = 100;

type RawEntry = [number, number, number, string[], string?, string?];

/**
 * The last `count` entries of one node's slow log, described without their arguments; a node that
 * refuses SLOWLOG is unavailable, one that refuses COMMAND gives entries without key counts.
 */
export async function readSlowlog(
  node: Redis,
  count: number,
  { connection, refusals }: { connection: string; refusals: RefusalLog },
): Promise<RedisNodeSlowlog | RedisNodeUnavailable> {
  const log = await refusals.attempt(connection, 'SLOWLOG', () => node.slowlog('GET', count) as Promise<RawEntry[]>);
  if ('refused' in log) return unavailableNode(node, log.refused);
  const keyCounts = await countKeys(
    node,
    log.value.map(([, , , args]) => args),
    (error) => refusals.refused(connection, 'COMMAND', error),
  );
  return {
    node: addressOf(node),
    available: true,
    entries: log.value.map((entry, index) => ({ ...describe(entry), keyCount: keyCounts[index] })),
  };
}

function describe([id, seconds, micros, args, address = '', name = '']: RawEntry): Omit<RedisSlowlogEntry, 'keyCount'> {
  const command = (args[0] ?? '').toUpperCase();
  const sub = CONTAINERS.has(command) && /^[a-z][a-z-]{0,31}$/i.test(args[1] ?? '') ? args[1].toUpperCase() : undefined;
  const more = MORE_ARGUMENTS.exec(args.at(-1) ?? '');
  const total = more ? args.length - 1 + Number(more[1]) : args.length;
  return {
    id,
    time: new Date(seconds * 1000),
    durationMicros: micros,
    command: sub === undefined ? command : `${command} ${sub}`,
    ...scriptOf(command, args),
    argumentCount: total - (sub === undefined ? 1 : 2),
    client: { address, name },
  };
}

function scriptOf(command: string, args: readonly string[]): { script?: string } {
  if (command === 'EVALSHA' || command === 'EVALSHA_RO') return { script: RedisScript.nameOf(args[1] ?? '') ?? args[1] };
  if (command === 'FCALL' || command === 'FCALL_RO') return { script: args[1] };
  return {};
}

/**
 * How many keys each recorded command names, as the node itself tells (`COMMAND GETKEYS`, sent in
 * pipelines of {@link GETKEYS_CHUNK}); null where it cannot: the slow log cut the arguments, or
 * COMMAND is refused (`refused` notes it, and no more are sent). An outage rejects.
 */
async function countKeys(
  node: Redis,
  commands: readonly string[][],
  refused: (error: unknown) => string | undefined,
): Promise<(number | null)[]> {
  const counts: (number | null)[] = commands.map((args) => (args.length < 2 ? 0 : null));
  const asked = commands.flatMap((args, index) => (args.length >= 2 && !MORE_ARGUMENTS.test(args.at(-1)!) ? [index] : []));
  for (let start = 0; start < asked.length; start += GETKEYS_CHUNK) {
    const chunk = asked.slice(start, start + GETKEYS_CHUNK);
    const replies = (await node.pipeline(chunk.map((index) => ['command', 'getkeys', ...commands[index]])).exec()) ?? [];
    for (const [position, [error, keys]] of replies.entries()) {
      if (error === null) counts[chunk[position]] = (keys as unknown[]).length;
      else if (/^ERR The command has no key arguments/.test(error.message)) counts[chunk[position]] = 0;
      else if (refused(error) !== undefined) return counts;
      else if (outageOf(error) !== undefined) throw error;
    }
  }
  return counts;
}
