import { randomBytes } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';
import { ClusterNotConnectedError, isCluster, masterNodes, type RedisClient } from '../core/redis-client.js';

/** SLOT_TAGS[s] is a short text that hashes to Cluster slot s, made once, on first use. */
let slotTags: readonly string[] | undefined;

function tagsBySlot(): readonly string[] {
  if (slotTags) return slotTags;
  const tags = new Array<string>(16_384);
  let filled = 0;
  // About 90,000 candidates cover every slot (a few tens of milliseconds, once).
  for (let candidate = 0; filled < tags.length; candidate++) {
    const text = candidate.toString(36);
    const slot = calculateSlot(text);
    if (tags[slot] === undefined) {
      tags[slot] = text;
      filled++;
    }
  }
  slotTags = tags;
  return tags;
}

/** This process's part of every epoch it makes: epochs made here never repeat one made anywhere. */
const PROCESS_EPOCHS = randomBytes(12).toString('base64url');
let epochsMade = 0;

/**
 * A value no epoch had before. Epochs are compared for equality only, and never counted up: an
 * epoch key lost with a failed master or evicted comes back as a value no load has seen, so a load
 * that began before the loss cannot store after it.
 */
export function newEpoch(): string {
  return `${PROCESS_EPOCHS}.${(++epochsMade).toString(36)}`;
}

/**
 * The fence of bulk invalidations: an epoch that a load reads when it misses (in the same script,
 * so in its key's slot) and must find unchanged when it stores. A tag, pattern or clear
 * invalidation moves every epoch before it deletes anything, so no load that began before it
 * stores its result after it, on any instance, whichever entries it covers. One key on one server;
 * one per slot on a Cluster (16,384 tiny keys, moved together in one pipeline per master).
 */
export class CacheEpochs {
  private readonly cluster: boolean;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {
    this.cluster = isCluster(redis);
  }

  /** The epoch key in the slot of `valueKey`. */
  keyFor(valueKey: string): string {
    return this.cluster ? `${this.prefix}c-epoch{${tagsBySlot()[calculateSlot(valueKey)]}}` : `${this.prefix}c-epoch`;
  }

  /** Moves every epoch (to a new value each): loads in flight anywhere will not store. */
  async bump(): Promise<void> {
    if (!isCluster(this.redis)) {
      await this.redis.set(`${this.prefix}c-epoch`, newEpoch());
      return;
    }
    const tags = tagsBySlot();
    const epoch = newEpoch();
    const owners = new Map(masterNodes(this.redis).map((node) => [`${node.options.host}:${node.options.port}`, node.pipeline()]));
    for (let slot = 0; slot < tags.length; slot++) {
      // A slot whose master is not known (the Cluster is reconfiguring) cannot be fenced: an outage.
      const owner = owners.get(this.redis.slots[slot]?.[0] ?? '');
      if (!owner) throw new ClusterNotConnectedError(`the master of slot ${slot} is not known`);
      owner.set(`${this.prefix}c-epoch{${tags[slot]}}`, epoch);
    }
    await Promise.all(
      [...owners.values()].map(async (pipeline) => {
        const failed = (await pipeline.exec())?.find(([error]) => error)?.[0];
        if (failed) throw failed;
      }),
    );
  }
}
