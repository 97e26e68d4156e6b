import { Body, Controller, Get, Inject, Post, Query } from '@nestjs/common';
import type { ClientProxy } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import type { Redis } from 'ioredis';
import { InjectRedis, RedisKeys, StreamService, type DeadLetter } from '../lib/index.js';
import { FULFILMENT, type DeliveryQuote } from './fulfilment.microservice.js';

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
    @Inject(FULFILMENT) private readonly fulfilment: ClientProxy,
  ) {}

  /** `curl -X POST -H 'content-type: application/json' -d '{"sku":"book","quantity":2}' http://127.0.0.1:3000/orders` */
  @Post()
  async place(@Body() body: { sku: string; quantity?: number }): Promise<{ orderId: string; entryId: string }> {
    const orderId = `o-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
    const event: OrderPlaced = { orderId, sku: String(body.sku), quantity: Number(body.quantity ?? 1) };
    const entryId = await this.streams.add('orders', event, { maxLen: 10_000 });
    // The fulfilment microservice: durable, whether or not it runs right now (see fulfilment.microservice.ts).
    await lastValueFrom(this.fulfilment.emit('order.placed', event));
    return { orderId, entryId };
  }

  /** Request/response with the fulfilment microservice: `curl 'http://127.0.0.1:3000/orders/quote?sku=book&quantity=2'` */
  @Get('quote')
  quote(@Query('sku') sku: string, @Query('quantity') quantity = '1'): Promise<DeliveryQuote> {
    return lastValueFrom(this.fulfilment.send<DeliveryQuote>('delivery.quote', { sku: String(sku), quantity: Number(quantity) }));
  }

  @Get('shipped')
  async shipped(): Promise<string[]> {
    return this.redis.smembers(this.keys.key('orders', 'shipped'));
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
