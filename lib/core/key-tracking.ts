import type { Redis } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import type { ResolvedCoreOptions } from './core.options.js';
import { isCluster, type RedisClient } from './redis-client.js';
import { createInvalidationConnection } from './redis-connection.factory.js';
import { TrackedNode, type KeyTrackingListener } from './tracked-node.js';

export { TrackedNode, type KeyTrackingListener } from './tracked-node.js';

/**
 * Server-assisted invalidation (Redis client-side caching, BCAST mode) of every key under a
 * prefix, on any topology: one {@link TrackedNode} for a standalone or Sentinel-managed server, one
 * per master on a Cluster. On a Cluster the set of masters follows the client's slot map: after
 * each refresh (a failover, a MOVED, a resharding, a node added or gone) a new master gets its
 * tracked node, one that is no longer a master is stopped (`lost`), and one that handed slots to
 * another node is reported as `invalidated(node, null)`, since writes on the new owner before it
 * was tracked went unreported. A tracked node that loses its connection asks the Cluster to
 * refresh its slot map, so a failover is found without waiting for a MOVED.
 *
 * @example
 * const tracking = new KeyTracking(connections.get(), 'app:{c:', coreOptions, 1_000, listener);
 * tracking.start();
 * tracking.nodeOf('app:{c:user:1}')?.isTracking;
 */
export class KeyTracking {
  private readonly nodes = new Map<string, TrackedNode>();
  /** The master of each slot when the nodes were last matched to the slot map. */
  private owners: readonly (string | undefined)[] = [];
  private heartbeat: NodeJS.Timeout | undefined;
  private started = false;
  private readonly syncWithSlots = () => this.sync();

  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
    private readonly options: ResolvedCoreOptions,
    private readonly heartbeatMs: number,
    private readonly listener: KeyTrackingListener,
  ) {}

  start(): void {
    if (this.started) return;
    this.started = true;
    this.heartbeat = setInterval(() => this.beat(), this.heartbeatMs);
    this.heartbeat.unref();
    const client = this.client;
    if (!isCluster(client)) {
      this.add('server');
      return;
    }
    for (const event of ['ready', 'refresh', '+node', '-node']) client.on(event, this.syncWithSlots);
    this.sync();
  }

  /** The tracked node that holds `key` now (the master of its slot on a Cluster), if there is one. */
  nodeOf(key: string): TrackedNode | undefined {
    if (!isCluster(this.client)) return this.nodes.get('server');
    const owner = this.client.slots[calculateSlot(key)]?.[0];
    return owner === undefined ? undefined : this.nodes.get(owner);
  }

  stop(): void {
    this.started = false;
    clearInterval(this.heartbeat);
    for (const event of ['ready', 'refresh', '+node', '-node']) this.client.off(event, this.syncWithSlots);
    for (const node of this.nodes.values()) node.stop('the application is shutting down');
    this.nodes.clear();
  }

  /**
   * Health checks of every tracked node; on a Cluster where one is not tracking (down, failing
   * over), also a refresh of the slot map, so a new master is found even if no command meets a MOVED.
   */
  private beat(): void {
    let degraded = false;
    for (const node of this.nodes.values()) {
      node.heartbeat();
      degraded ||= !node.isTracking;
    }
    if (degraded && isCluster(this.client)) this.client.refreshSlotsCache();
  }

  /** Matches the tracked nodes to the Cluster's slot map: one per master that owns slots. */
  private sync(): void {
    if (!this.started || !isCluster(this.client)) return;
    const slots = this.client.slots;
    const owners: (string | undefined)[] = new Array<string | undefined>(16_384);
    for (let slot = 0; slot < owners.length; slot++) owners[slot] = slots[slot]?.[0];
    const masters = new Set(owners.filter((owner): owner is string => owner !== undefined));
    // A map without masters is a Cluster between two refreshes: keep what is tracked until it knows more.
    if (masters.size === 0) return;
    const handedOver = new Set<string>();
    for (let slot = 0; slot < owners.length; slot++) {
      const before = this.owners[slot];
      if (before !== undefined && before !== owners[slot]) handedOver.add(before);
    }
    this.owners = owners;
    for (const [address, node] of this.nodes) {
      if (masters.has(address)) {
        if (handedOver.has(address)) this.listener.invalidated(node, null);
        continue;
      }
      this.nodes.delete(address);
      node.stop('it is no longer a master');
    }
    for (const address of masters) if (!this.nodes.has(address)) this.add(address);
  }

  private add(address: string): void {
    const connection: Redis = createInvalidationConnection(this.client, this.options, address === 'server' ? undefined : address);
    const node = new TrackedNode(address, connection, this.prefix, this.clusterAware(), this.options.reconnect);
    this.nodes.set(address, node);
    node.start();
  }

  /** The listener; on a Cluster, a lost node also asks for the slot map, so a failover is found without waiting for a MOVED. */
  private clusterAware(): KeyTrackingListener {
    const { client, listener } = this;
    if (!isCluster(client)) return listener;
    return {
      invalidated: (node, keys) => listener.invalidated(node, keys),
      tracked: (node, since) => listener.tracked(node, since),
      confirmed: (node, sentAt) => listener.confirmed(node, sentAt),
      refused: (node, error) => listener.refused(node, error),
      lost: (node, reason) => {
        listener.lost(node, reason);
        if (this.started && this.nodes.get(node.address) === node) client.refreshSlotsCache();
      },
    };
  }
}
