import type { Redis } from 'ioredis';

/** A node whose numbers could not be read, and why (a command the server refuses). */
export interface RedisNodeUnavailable {
  /** `host:port` */
  node: string;
  available: false;
  /** `'INFO is not allowed for this user (NOPERM)'` */
  reason: string;
}

/**
 * One node's numbers, read from its `INFO`. A number the server does not report is `NaN` (null in
 * JSON); every Redis since 2.8 reports them all.
 */
export interface RedisNodeSnapshot {
  /** `host:port` */
  node: string;
  available: true;
  /** From `role:` (`slave` is `replica`). */
  role: 'master' | 'replica';
  memory: {
    /** `used_memory`: what Redis allocated for data and its own structures. */
    usedBytes: number;
    /** `used_memory_peak` */
    peakBytes: number;
    /** `maxmemory`: 0 when unlimited. */
    maxBytes: number;
    /** `mem_fragmentation_ratio`: resident memory over used memory. */
    fragmentationRatio: number;
  };
  keyspace: {
    /** Keys of every database of the node. */
    keys: number;
    /** `keyspace_hits` and `keyspace_misses` since the server started (or `CONFIG RESETSTAT`). */
    hits: number;
    misses: number;
    /** hits / (hits + misses); null before the first lookup. */
    hitRatio: number | null;
    /** `evicted_keys`: dropped to stay under `maxmemory`. */
    evictedKeys: number;
    /** `expired_keys` */
    expiredKeys: number;
  };
  /** `connected_clients` */
  connectedClients: number;
  /** `instantaneous_ops_per_sec` */
  opsPerSecond: number;
}

/** What `RedisInsightsService.snapshot()` answers: each master of a Cluster, or the one server. */
export interface RedisServerSnapshot {
  connection: string;
  takenAt: Date;
  nodes: (RedisNodeSnapshot | RedisNodeUnavailable)[];
}

/** A snapshot in a few numbers, as health reports carry it (`server`): totals over the nodes that answered. */
export type RedisServerSummary =
  | {
      available: true;
      nodes: number;
      /** Nodes that refused INFO. */
      unavailableNodes: number;
      memoryUsedBytes: number;
      opsPerSecond: number;
      connectedClients: number;
      evictedKeys: number;
      /** Over every node's hits and misses; null before the first lookup. */
      keyspaceHitRatio: number | null;
      takenAt: Date;
    }
  | { available: false; nodes: number; reason: string };

/** `host:port` of a node (for a Sentinel-managed master, of the server it is connected to). */
export function addressOf(node: Redis): string {
  const { host, port, path, sentinels } = node.options;
  const stream = node.stream as Redis['stream'] | undefined;
  if (sentinels && stream?.remoteAddress) return `${stream.remoteAddress}:${stream.remotePort}`;
  return path ?? `${host ?? 'localhost'}:${port ?? 6379}`;
}

/** A node that could not be read, and why. */
export function unavailableNode(node: Redis, reason: string): RedisNodeUnavailable {
  return { node: addressOf(node), available: false, reason };
}

/** A node's numbers from the text of its `INFO` (the default sections). */
export function parseInfo(node: string, text: string): RedisNodeSnapshot {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  const number = (name: string) => Number(fields.get(name) ?? NaN);
  const [hits, misses] = [number('keyspace_hits'), number('keyspace_misses')];
  let keys = 0;
  for (const [name, value] of fields) if (/^db\d+$/.test(name)) keys += Number(/(?:^|,)keys=(\d+)/.exec(value)?.[1] ?? 0);
  return {
    node,
    available: true,
    role: fields.get('role') === 'slave' ? 'replica' : 'master',
    memory: {
      usedBytes: number('used_memory'),
      peakBytes: number('used_memory_peak'),
      maxBytes: number('maxmemory'),
      fragmentationRatio: number('mem_fragmentation_ratio'),
    },
    keyspace: {
      keys,
      hits,
      misses,
      hitRatio: ratio(hits, misses),
      evictedKeys: number('evicted_keys'),
      expiredKeys: number('expired_keys'),
    },
    connectedClients: number('connected_clients'),
    opsPerSecond: number('instantaneous_ops_per_sec'),
  };
}

/** The totals of a snapshot over the nodes that answered. */
export function summarize(snapshot: RedisServerSnapshot): RedisServerSummary {
  const read = snapshot.nodes.filter((node): node is RedisNodeSnapshot => node.available);
  const refused = snapshot.nodes.find((node): node is RedisNodeUnavailable => !node.available);
  if (read.length === 0) return { available: false, nodes: snapshot.nodes.length, reason: refused?.reason ?? 'no node' };
  const total = (value: (node: RedisNodeSnapshot) => number) => read.reduce((sum, node) => sum + value(node), 0);
  return {
    available: true,
    nodes: snapshot.nodes.length,
    unavailableNodes: snapshot.nodes.length - read.length,
    memoryUsedBytes: total((node) => node.memory.usedBytes),
    opsPerSecond: total((node) => node.opsPerSecond),
    connectedClients: total((node) => node.connectedClients),
    evictedKeys: total((node) => node.keyspace.evictedKeys),
    keyspaceHitRatio: ratio(
      total((node) => node.keyspace.hits),
      total((node) => node.keyspace.misses),
    ),
    takenAt: snapshot.takenAt,
  };
}

function ratio(hits: number, misses: number): number | null {
  return hits + misses > 0 ? hits / (hits + misses) : null;
}
