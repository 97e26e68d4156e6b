import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import { ClusterNotConnectedError, isCluster, masterNodes, type RedisClient } from '../core/redis-client.js';

/** How many entries one step of a bulk operation reads and deletes. */
export const BULK_CHUNK = 1_000;

/**
 * Deletes entries with UNLINK (Redis frees the memory in the background), in as few commands as
 * the topology allows: one UNLINK per chunk on one server; on a Cluster, one per slot of the
 * chunk, sent to each master in one pipeline. Loads in flight are fenced off by the epochs, moved
 * before (see `CacheEpochs`).
 * @returns how many of the entries existed.
 */
export async function unlinkEntries(redis: RedisClient, valueKeys: readonly string[]): Promise<number> {
  if (valueKeys.length === 0) return 0;
  if (!isCluster(redis)) return redis.unlink(...valueKeys);
  const counts = await Promise.all([...pipelinesByMaster(redis, valueKeys).values()].map(countUnlinked));
  return counts.reduce((sum, count) => sum + count, 0);
}

/** A pipeline per master, of one UNLINK per slot of the keys it owns. */
function pipelinesByMaster(cluster: Cluster, keys: readonly string[]): Map<string, ReturnType<Redis['pipeline']>> {
  const bySlot = new Map<number, string[]>();
  for (const key of keys) {
    const slot = calculateSlot(key);
    const group = bySlot.get(slot);
    if (group) group.push(key);
    else bySlot.set(slot, [key]);
  }
  const masters = new Map(masterNodes(cluster).map((node) => [`${node.options.host}:${node.options.port}`, node]));
  const pipelines = new Map<string, ReturnType<Redis['pipeline']>>();
  for (const [slot, slotKeys] of bySlot) {
    const owner = cluster.slots[slot]?.[0];
    const node = owner === undefined ? undefined : masters.get(owner);
    // The slot's master is not known (the Cluster is reconfiguring): an outage; a retry finishes.
    if (!node) throw new ClusterNotConnectedError(`the master of slot ${slot} is not known`);
    let pipeline = pipelines.get(owner!);
    if (!pipeline) pipelines.set(owner!, (pipeline = node.pipeline()));
    pipeline.unlink(...slotKeys);
  }
  return pipelines;
}

async function countUnlinked(pipeline: ReturnType<Redis['pipeline']>): Promise<number> {
  let count = 0;
  for (const [error, reply] of (await pipeline.exec()) ?? []) {
    if (error) throw error;
    count += Number(reply);
  }
  return count;
}
