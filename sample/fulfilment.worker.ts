import { Injectable, Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { InjectRedis, OnStreamMessage, RedisKeys, type StreamMessageInfo } from '../lib/index.js';
import type { OrderPlaced } from './orders.controller.js';

/** A member of the `fulfilment` consumer group of the `orders` stream, in every instance of the app. */
@Injectable()
export class FulfilmentWorker {
  private readonly logger = new Logger('Fulfilment');

  constructor(
    @InjectRedis() private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  @OnStreamMessage('orders', 'fulfilment', { maxDeliveries: 3, claimIdle: '1s' })
  async fulfil(order: OrderPlaced, { id, deliveries }: StreamMessageInfo): Promise<void> {
    if (order.sku === 'poison') throw new Error(`cannot fulfil SKU "${order.sku}"`);
    // Idempotent: a redelivered order is recorded once.
    await this.redis.sadd(this.keys.key('orders', 'fulfilled'), order.orderId);
    this.logger.log(`fulfilled ${order.orderId} (entry ${id}, delivery ${deliveries})`);
  }
}
