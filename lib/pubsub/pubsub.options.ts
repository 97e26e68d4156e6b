/**
 * Options of the pub/sub feature, under `pubsub` in the module options.
 *
 * @example
 * RedisPatternsModule.forRoot({ connection, pubsub: { sharded: false } });
 */
export interface PubSubOptions {
  /**
   * Use sharded pub/sub (SPUBLISH/SSUBSCRIBE), which keeps a channel's traffic in the shard that
   * owns it instead of broadcasting it to every node. `'auto'` uses it on a Cluster of Redis 7 or
   * later. Pattern subscriptions cannot be sharded: with sharding on, `psubscribe` fails.
   * @default 'auto'
   */
  sharded?: 'auto' | boolean;
}

/** Injection token of the resolved `pubsub` section. */
export const PUBSUB_OPTIONS = Symbol('RedisPatterns:PubSubOptions');

/** The `pubsub` section with its defaults applied. */
export type ResolvedPubSubOptions = Required<PubSubOptions>;
