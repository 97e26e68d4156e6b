import type { RedisCodec } from '../core/codec.js';
import type { CountedMetric } from '../core/metrics.js';
import type { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';
import type { RedisTracing } from '../core/tracing.js';
import type { StreamHandler } from './stream.interfaces.js';

/** Everything one consumer needs, resolved by StreamService. */
export interface StreamConsumerSettings {
  stream: string;
  group: string;
  consumer: string;
  streamKey: string;
  deadLetterKey: string;
  batch: number;
  blockMs: number;
  claimIdleMs: number;
  maxDeliveries: number;
  /** When set, a failed entry is retried by the same consumer after this backoff; otherwise after claimIdle. */
  retryBackoff: { minMs: number; maxMs: number } | undefined;
  startId: '0' | '$';
  /** How long stop() waits for the handler in flight. */
  stopTimeoutMs: number;
  client: RedisClient;
  blockingClient: RedisClient;
  codec: RedisCodec;
  handler: StreamHandler<unknown>;
  /** Puts each handler call in a `stream.handle` span while a tracer is attached. */
  tracing: RedisTracing;
  /** The streams' outage log, shared by every consumer and add(): an outage is logged once. */
  outage: OutageLog;
  /** Entries handled, failed and dead-lettered, by stream and outcome (`stream_entries_total`). */
  entries: CountedMetric;
  /** Called once the consumer has stopped. */
  onStopped: () => void;
}
