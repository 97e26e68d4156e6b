import type { Redis } from 'ioredis';
import { outageOf } from '../core/store-failure.js';
import type { RefusalLog } from './insights.refusals.js';
import { addressOf } from './insights.snapshot.js';

/** A key and its size by `MEMORY USAGE` (bytes, with Redis's overhead; nested values estimated from 5 elements). */
export interface RedisBigKey {
  key: string;
  bytes: number;
  node: string;
}

/** The keys of one feature that were looked at. */
export interface RedisFeatureKeys {
  /** The feature's name (`'cache'`, `'sessions'`...), or `'other'` for keys of no feature. */
  feature: string;
  keys: number;
  /** Their memory, over the keys whose size could be read. */
  bytes: number;
  /** The largest, largest first (at most `top`). */
  largest: RedisBigKey[];
}

/** What `RedisInsightsService.bigKeys()` answers. */
export interface RedisBigKeysReport {
  connection: string;
  /** Keys looked at: at most `sample`. */
  scanned: number;
  /** Whether every key under the prefix was looked at (then the numbers are totals, not a sample). */
  complete: boolean;
  /** Per feature, the most memory first. */
  features: RedisFeatureKeys[];
  /** What a node refused (SCAN: its keys were not looked at; MEMORY: their sizes are missing), and why. */
  unavailable: { node: string; command: 'SCAN' | 'MEMORY'; reason: string }[];
}

/** How a sample is taken: `sample` keys at most, in SCAN batches of {@link SCAN_BATCH}. */
export interface BigKeysPlan {
  connection: string;
  /** The SCAN pattern: every key under the prefix. */
  match: string;
  sample: number;
  top: number;
  featureOf(key: string): string;
  refusals: RefusalLog;
}

/** Keys asked of SCAN at a time; their sizes go in one pipeline. */
const SCAN_BATCH = 200;

/** One node's SCAN, and whether it still answers MEMORY USAGE. */
interface NodeScan {
  node: Redis;
  address: string;
  cursor: string;
  done: boolean;
  sizes: boolean;
}

/**
 * Looks at up to `plan.sample` keys under the prefix, a SCAN batch from each node in turn (so a
 * Cluster's masters are sampled alike), with `MEMORY USAGE` of each batch in one pipeline, and
 * tallies them per feature.
 */
export async function sampleBigKeys(nodes: readonly Redis[], plan: BigKeysPlan): Promise<RedisBigKeysReport> {
  const tally = new FeatureTally(plan.top);
  const unavailable: RedisBigKeysReport['unavailable'] = [];
  const scans: NodeScan[] = nodes.map((node) => ({ node, address: addressOf(node), cursor: '0', done: false, sizes: true }));
  let remaining = plan.sample;
  let cut = false;
  while (remaining > 0 && scans.some((scan) => !scan.done)) {
    for (const scan of scans.filter((candidate) => !candidate.done)) {
      const batch = await plan.refusals.attempt(plan.connection, 'SCAN', () =>
        scan.node.scan(scan.cursor, 'MATCH', plan.match, 'COUNT', SCAN_BATCH),
      );
      if ('refused' in batch) {
        scan.done = cut = true;
        unavailable.push({ node: scan.address, command: 'SCAN', reason: batch.refused });
        continue;
      }
      const [cursor, found] = batch.value;
      [scan.cursor, scan.done] = [cursor, cursor === '0'];
      const keys = found.slice(0, remaining);
      cut ||= keys.length < found.length;
      remaining -= keys.length;
      const sizes = await sizesOf(scan, keys, plan, unavailable);
      keys.forEach((key, index) => tally.add(plan.featureOf(key), key, sizes[index], scan.address));
      if (remaining === 0) break;
    }
  }
  const complete = !cut && scans.every((scan) => scan.done);
  return { connection: plan.connection, scanned: plan.sample - remaining, complete, features: tally.features(), unavailable };
}

/** `MEMORY USAGE` of each key, in one pipeline; undefined for a key gone since the SCAN, or once MEMORY is refused. */
async function sizesOf(
  scan: NodeScan,
  keys: readonly string[],
  plan: BigKeysPlan,
  unavailable: RedisBigKeysReport['unavailable'],
): Promise<(number | undefined)[]> {
  if (!scan.sizes || keys.length === 0) return [];
  const replies = (await scan.node.pipeline(keys.map((key) => ['memory', 'usage', key])).exec()) ?? [];
  const sizes: (number | undefined)[] = [];
  for (const [error, bytes] of replies) {
    if (error === null) {
      sizes.push(typeof bytes === 'number' ? bytes : undefined);
      continue;
    }
    if (outageOf(error) !== undefined) throw error;
    const reason = plan.refusals.refused(plan.connection, 'MEMORY', error);
    if (reason === undefined) throw error;
    scan.sizes = false;
    unavailable.push({ node: scan.address, command: 'MEMORY', reason });
    return [];
  }
  return sizes;
}

/** Keys counted per feature, with the largest `top` of each kept in order. */
class FeatureTally {
  private readonly byFeature = new Map<string, RedisFeatureKeys>();

  constructor(private readonly top: number) {}

  add(feature: string, key: string, bytes: number | undefined, node: string): void {
    let tally = this.byFeature.get(feature);
    if (tally === undefined) this.byFeature.set(feature, (tally = { feature, keys: 0, bytes: 0, largest: [] }));
    tally.keys++;
    if (bytes === undefined) return;
    tally.bytes += bytes;
    const { largest } = tally;
    if (largest.length === this.top && largest[this.top - 1].bytes >= bytes) return;
    const at = largest.findIndex((big) => big.bytes < bytes);
    largest.splice(at === -1 ? largest.length : at, 0, { key, bytes, node });
    if (largest.length > this.top) largest.pop();
  }

  features(): RedisFeatureKeys[] {
    return [...this.byFeature.values()].sort((a, b) => b.bytes - a.bytes || b.keys - a.keys);
  }
}
