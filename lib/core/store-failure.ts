import { HttpException, HttpStatus } from '@nestjs/common';
import { CommandInFlightLostError } from './cluster-delivery.js';
import { CommandTimeoutError } from './command-timeout.js';
import { ClusterNotConnectedError } from './redis-client.js';

/**
 * Why Redis could not answer a command:
 * - `'disconnected'`: no connection to the server (down, unreachable, refused, reset, closing);
 * - `'timeout'`: no reply within `commandTimeout`;
 * - `'failover'`: a Cluster or replication change is under way (CLUSTERDOWN, MOVED to a node that
 *   is gone, TRYAGAIN, too many redirections, a master that became a replica, MASTERDOWN);
 * - `'loading'`: the server is loading its data after a restart;
 * - `'busy'`: a script has run past `busy-reply-threshold` and the server answers nothing else (BUSY);
 * - `'refusing-writes'`: the server refuses writes (MISCONF after a failed snapshot, NOREPLICAS
 *   when fewer replicas than `min-replicas-to-write` are connected);
 * - `'out-of-memory'`: the server is at `maxmemory` and refuses writes.
 */
export type OutageKind = 'disconnected' | 'timeout' | 'failover' | 'loading' | 'busy' | 'refusing-writes' | 'out-of-memory';

/** What each kind of outage is, in the words the library logs and answers with. */
const DESCRIPTIONS: Readonly<Record<OutageKind, string>> = {
  disconnected: 'no connection to the server',
  timeout: 'no reply within the command timeout',
  failover: 'a failover is under way: a master is down or being replaced',
  loading: 'the server is loading its data after a restart',
  busy: 'the server is busy running a script',
  'refusing-writes': 'the server refuses writes (a failed snapshot, or too few replicas)',
  'out-of-memory': 'the server is out of memory (maxmemory reached)',
};

/** Messages of ioredis and Redis replies that mean the server could not answer, by kind. */
const MESSAGES: readonly (readonly [RegExp, OutageKind])[] = [
  [
    /^(Connection is closed|Stream isn't writeable|Cluster isn't ready|Cluster is (ended|disconnected|disconnecting)|Node is disconnected|None of startup nodes is available|Failed to refresh slots cache|Command aborted due to connection close|Connection is aborted|Connection is discarded|No master node is available|Socket timeout|Reached the max retries per request limit|connect ETIMEDOUT)/,
    'disconnected',
  ],
  [/^(CLUSTERDOWN|TRYAGAIN|MOVED|ASK|MASTERDOWN|READONLY|Too many Cluster redirections)\b/, 'failover'],
  [/^Command timed out\b/, 'timeout'],
  [/^LOADING\b/, 'loading'],
  [/^BUSY\b/, 'busy'],
  [/^(MISCONF|NOREPLICAS)\b/, 'refusing-writes'],
  [/^OOM\b/, 'out-of-memory'],
];

/** Socket error codes of Node.js that mean the server cannot be reached. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * The kind of outage an error means, or undefined when it is not one: a bug or bad data (a
 * WRONGTYPE, a CROSSSLOT, a script error, a codec error) is thrown by features, never treated as
 * Redis being away.
 *
 * @example
 * outageOf(new Error('CLUSTERDOWN The cluster is down')); // 'failover'
 * outageOf(new Error('WRONGTYPE Operation against a key holding the wrong kind of value')); // undefined
 */
export function outageOf(error: unknown): OutageKind | undefined {
  if (error instanceof RedisUnavailableError) return error.outage;
  if (error instanceof CommandTimeoutError) return 'timeout';
  if (error instanceof CommandInFlightLostError || error instanceof ClusterNotConnectedError) return 'disconnected';
  if (!(error instanceof Error)) return undefined;
  if (error.name === 'MaxRetriesPerRequestError') return 'disconnected';
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined && SOCKET_CODES.has(code)) return 'disconnected';
  for (const [pattern, kind] of MESSAGES) if (pattern.test(error.message)) return kind;
  return undefined;
}

/**
 * Whether an error means Redis could not answer (see {@link outageOf}), as opposed to a bug, which
 * features throw rather than treat as an outage.
 */
export function isStoreFailure(error: unknown): boolean {
  return outageOf(error) !== undefined;
}

/** The library's words for a kind of outage, for logs and error messages. */
export function describeOutage(kind: OutageKind): string {
  return DESCRIPTIONS[kind];
}

/** Why a call failed, for a log line: an outage in the library's words, anything else by its own message. */
export function describeError(error: unknown): string {
  const kind = outageOf(error);
  return kind === undefined ? ((error as Error)?.message ?? String(error)) : describeOutage(kind);
}

/**
 * Redis could not answer a feature's call (see {@link OutageKind}). An `HttpException`, so a
 * controller answers 503 Service Unavailable instead of 500; `status` and `statusCode` are set
 * too, so Express and Fastify error handlers outside Nest (express-session's `next(error)`) answer
 * 503 as well. The response body says only `Service Unavailable`; the feature and the kind of
 * outage are in `message` and the properties, for logs. The original error is its `cause`.
 *
 * @example
 * try { await this.board.submit(playerId, score); }
 * catch (error) { if (error instanceof RedisUnavailableError) return this.queueForLater(playerId, score); throw error; }
 */
export class RedisUnavailableError extends HttpException {
  readonly statusCode = HttpStatus.SERVICE_UNAVAILABLE;
  /** The name of the module connection that failed. */
  readonly connection: string;

  constructor(
    /** The feature that could not reach Redis: `'sessions'`, `'leaderboards'`, `'the cache'`... */
    readonly feature: string,
    readonly outage: OutageKind,
    options?: { cause?: unknown; connection?: string },
  ) {
    super({ statusCode: HttpStatus.SERVICE_UNAVAILABLE, message: 'Service Unavailable' }, HttpStatus.SERVICE_UNAVAILABLE, {
      cause: options?.cause,
    });
    this.name = 'RedisUnavailableError';
    this.message = `Redis is unavailable to ${feature} (${describeOutage(outage)})`;
    this.connection = options?.connection ?? 'default';
  }
}
