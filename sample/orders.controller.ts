import { Body, Controller, Get, Post } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { InjectRedis, RedisKeys, StreamService, type DeadLetter } from '../lib/index.js';

export interface OrderPlaced {
  orderId: string;
  sku: string;
  quantity: number;
}

/**
 * Order events that must not be lost: added to a Redis stream, consumed by the `fulfilment` group.
 * An order whose SKU is "poison" always fails; after 3 deliveries it lands in the dead-letter stream.
 */
@Controller('orders')
export class OrdersController {
  constructor(
    private readonly streams: StreamService,
    @InjectRedis() private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  /** `curl -X POST -H 'content-type: application/json' -d '{"sku":"book","quantity":2}' http://127.0.0.1:3000/orders` */
  @Post()
  async place(@Body() body: { sku: string; quantity?: number }): Promise<{ orderId: string; entryId: string }> {
    const orderId = `o-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
    const event: OrderPlaced = { orderId, sku: String(body.sku), quantity: Number(body.quantity ?? 1) };
    return { orderId, entryId: await this.streams.add('orders', event, { maxLen: 10_000 }) };
  }

  @Get('fulfilled')
  async fulfilled(): Promise<string[]> {
    return this.redis.smembers(this.keys.key('orders', 'fulfilled'));
  }

  @Get('dead-letters')
  deadLetters(): Promise<DeadLetter<OrderPlaced>[]> {
    return this.streams.deadLetters<OrderPlaced>('orders');
  }
}
