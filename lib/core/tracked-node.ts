import type { Redis } from 'ioredis';
import { backoffDelay } from './redis-connection.factory.js';

/** The channel Redis publishes invalidations on for a RESP2 redirect target. */
const INVALIDATE_CHANNEL = '__redis__:invalidate';
/** After a refusal, tracking is asked for again after this many shortest reconnect delays, doubling up to 30 s. */
const REFUSED_RETRY_FACTOR = 20;
const REFUSED_RETRY_MAX_MS = 30_000;

/** What a {@link TrackedNode} reports, with the node it concerns. */
export interface KeyTrackingListener {
  /**
   * Keys under the prefix were written, deleted, expired or evicted on `node`; `null`: any of its
   * keys may have changed (its keyspace was flushed, or it handed slots over).
   */
  invalidated(node: TrackedNode, keys: readonly string[] | null): void;
  /**
   * From now on every change on `node` is reported: tracking is on and the subscription confirmed.
   * `since` (`performance.now()`) is when the subscription was sent: changes after it are reported.
   */
  tracked(node: TrackedNode, since: number): void;
  /** Every change `node` made before `sentAt` (`performance.now()` when a PING left) has been reported. */
  confirmed(node: TrackedNode, sentAt: number): void;
  /**
   * Changes on `node` may go unreported: its connection dropped, a health check failed, or it is
   * no longer tracked. `reason` says which, in the library's words.
   */
  lost(node: TrackedNode, reason: string): void;
  /** Redis refused to turn tracking on (an ACL, a proxy, Redis before 6); it is tried again with backoff. */
  refused(node: TrackedNode, error: unknown): void;
}

/**
 * One server whose writes under a prefix are reported, over a connection of its own (RESP2, see
 * `createInvalidationConnection`): on each connect it reads its client id, turns on
 * `CLIENT TRACKING ON REDIRECT <its own id> BCAST PREFIX <prefix>` and subscribes to
 * `__redis__:invalidate`. Tracking and delivery are then the same connection's state: when it drops,
 * both go, and the listener hears `lost` (the case Redis itself never reports to a redirect target,
 * redis#11767, cannot arise). BCAST reports every write under the prefix, whichever client read the
 * key, so the connections that read need no tracking of their own, and Redis keeps no per-key table
 * for it (`tracking-table-max-keys` does not apply). A PING every `heartbeatMs` confirms delivery;
 * one that fails or times out counts as lost, and the connection is made again.
 */
export class TrackedNode {
  private state: 'idle' | 'setting-up' | 'tracking' | 'stopped' = 'idle';
  private pinging = false;
  private refusals = 0;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    /** "host:port" on a Cluster; the client's own server otherwise. */
    readonly address: string,
    private readonly connection: Redis,
    private readonly prefix: string,
    private readonly listener: KeyTrackingListener,
    private readonly retryDelay: { minDelayMs: number; maxDelayMs: number },
  ) {
    connection.on('error', () => undefined); // a failed connect or command shows as 'close' or a rejected command
    connection.on('ready', () => {
      // The server's FIN is read before the socket's 'close', which Node emits in a later phase of
      // the event loop, after replies that other connections got meanwhile: a write acknowledged
      // after the drop must not find this node's entries still served.
      connection.stream.once('end', () => this.drop('its connection closed'));
      void this.setUp();
    });
    connection.on('close', () => this.drop('its connection closed'));
    connection.on('messageBuffer', (channel: Buffer, keys: Buffer[] | null) => {
      // Reports that come with the subscription's confirmation count too (before `tracked`, they are harmless).
      if (this.state === 'idle' || this.state === 'stopped' || channel.toString() !== INVALIDATE_CHANNEL) return;
      this.listener.invalidated(this, keys === null ? null : keys.map((key) => key.toString()));
    });
  }

  /** Whether every change is being reported now. */
  get isTracking(): boolean {
    return this.state === 'tracking';
  }

  start(): void {
    this.connection.connect().catch(() => undefined); // retried by the connection's own backoff
  }

  /** Sends a PING (unless one is pending): its answer confirms delivery up to when it left; a failure drops the connection. */
  heartbeat(): void {
    if (this.state !== 'tracking' || this.pinging) return;
    this.pinging = true;
    const sentAt = performance.now();
    const connection = this.connection;
    connection.ping().then(
      () => {
        this.pinging = false;
        if (this.state === 'tracking') this.listener.confirmed(this, sentAt);
      },
      () => {
        this.pinging = false;
        if (this.state !== 'tracking') return;
        this.drop('a health check got no answer');
        connection.disconnect(true);
      },
    );
  }

  /** Stops for good; the listener hears `lost` if it was tracking. */
  stop(reason: string): void {
    this.drop(reason);
    this.state = 'stopped';
    clearTimeout(this.retry);
    this.connection.disconnect();
  }

  private async setUp(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'setting-up';
    const connection = this.connection;
    try {
      const id = (await connection.client('ID')) as number;
      await connection.client('TRACKING', 'ON', 'REDIRECT', String(id), 'BCAST', 'PREFIX', this.prefix);
      const since = performance.now();
      await connection.subscribe(INVALIDATE_CHANNEL);
      if (this.state !== 'setting-up') return;
      this.state = 'tracking';
      this.refusals = 0;
      this.listener.tracked(this, since);
    } catch (error) {
      if (this.state !== 'setting-up' || connection.status !== 'ready') return; // the connection dropped: it reconnects
      // Refused: try again later on a new connection, without hammering the server.
      this.listener.refused(this, error);
      this.state = 'idle';
      connection.disconnect();
      const delayMs = backoffDelay(++this.refusals, this.retryDelay.minDelayMs * REFUSED_RETRY_FACTOR, REFUSED_RETRY_MAX_MS);
      this.retry = setTimeout(() => this.start(), delayMs);
      this.retry.unref();
    }
  }

  private drop(reason: string): void {
    const wasTracking = this.state === 'tracking';
    if (this.state !== 'stopped') this.state = 'idle';
    if (wasTracking) this.listener.lost(this, reason);
  }
}
