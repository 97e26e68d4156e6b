import type { RedisMetrics } from '../core/metrics.js';
import type { RedisNodeSnapshot, RedisServerSnapshot } from './insights.snapshot.js';

/** One series per node that answered INFO, labelled by connection and node address (bounded: the servers). */
const SERIES: readonly { name: string; help: string; type: 'gauge' | 'counter'; value(node: RedisNodeSnapshot): number | null }[] = [
  { name: 'redis_memory_used_bytes', help: 'Memory Redis uses (used_memory)', type: 'gauge', value: (node) => node.memory.usedBytes },
  {
    name: 'redis_memory_fragmentation_ratio',
    help: 'Resident memory over used memory (mem_fragmentation_ratio)',
    type: 'gauge',
    value: (node) => node.memory.fragmentationRatio,
  },
  {
    name: 'redis_ops_per_second',
    help: 'Commands per second (instantaneous_ops_per_sec)',
    type: 'gauge',
    value: (node) => node.opsPerSecond,
  },
  {
    name: 'redis_keyspace_hit_ratio',
    help: 'Key lookups that found the key, since the server started',
    type: 'gauge',
    value: (node) => node.keyspace.hitRatio,
  },
  { name: 'redis_keyspace_hits_total', help: 'Key lookups that found the key', type: 'counter', value: (node) => node.keyspace.hits },
  { name: 'redis_keyspace_misses_total', help: 'Key lookups that found no key', type: 'counter', value: (node) => node.keyspace.misses },
  {
    name: 'redis_evicted_keys_total',
    help: 'Keys evicted to stay under maxmemory',
    type: 'counter',
    value: (node) => node.keyspace.evictedKeys,
  },
  { name: 'redis_expired_keys_total', help: 'Keys expired', type: 'counter', value: (node) => node.keyspace.expiredKeys },
  { name: 'redis_connected_clients', help: 'Client connections', type: 'gauge', value: (node) => node.connectedClients },
];

/**
 * Reports the servers' numbers as `redis_*{connection, node}`, read from the latest snapshot of
 * each connection when the metrics are collected (no command is sent then). A value the server
 * does not report, and a hit ratio before any lookup, have no series.
 */
export function reportServerMetrics(metrics: RedisMetrics, latest: () => Iterable<RedisServerSnapshot>): void {
  for (const series of SERIES) {
    metrics.collect({
      name: series.name,
      help: series.help,
      type: series.type,
      labelNames: ['connection', 'node'],
      collect: () =>
        [...latest()].flatMap(({ connection, nodes }) =>
          nodes.flatMap((node) => {
            const value = node.available ? series.value(node) : null;
            return value === null || Number.isNaN(value) ? [] : [[{ connection, node: node.node }, value] as const];
          }),
        ),
    });
  }
}
