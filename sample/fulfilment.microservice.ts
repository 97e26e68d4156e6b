import { Controller, Logger, Module, type INestMicroservice, type LoggerService, type Provider } from '@nestjs/common';
import { NestFactory, ModuleRef } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import type { Redis } from 'ioredis';
import { InjectRedis, RedisKeys, RedisPatternsModule } from '../lib/index.js';
import { RedisStreamsClient, RedisStreamsContext, RedisStreamsServer } from '../lib/microservices/index.js';
import type { OrderPlaced } from './orders.controller.js';

/** The orders app's client of the fulfilment microservice (a `ClientProxy` on Redis Streams). */
export const FULFILMENT = Symbol('FULFILMENT');

/** `@Inject(FULFILMENT) fulfilment: ClientProxy`: a RedisStreamsClient on the module's connection. */
export const fulfilmentClientProvider: Provider = {
  provide: FULFILMENT,
  useFactory: (moduleRef: ModuleRef) => new RedisStreamsClient({ app: moduleRef, timeout: '5s' }),
  inject: [ModuleRef],
};

export interface DeliveryQuote {
  sku: string;
  days: number;
  priceCents: number;
}

/**
 * The fulfilment microservice: ships every `order.placed` once per order (one instance of the
 * service gets each event, even when several run), and answers `delivery.quote` requests.
 * The handlers are Nest's usual ones; only the transport differs.
 */
@Controller()
export class FulfilmentController {
  private readonly logger = new Logger('FulfilmentService');

  constructor(
    @InjectRedis() private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  @EventPattern<string>('order.placed')
  async ship(@Payload() order: OrderPlaced, @Ctx() context: RedisStreamsContext): Promise<void> {
    // Idempotent: an event delivered again (its instance died before acknowledging) ships once.
    await this.redis.sadd(this.keys.key('orders', 'shipped'), order.orderId);
    this.logger.log(`shipped ${order.orderId} (entry ${context.getEntryId()}, delivery ${context.getDeliveries()})`);
  }

  @MessagePattern('delivery.quote')
  quote(@Payload() { sku, quantity }: { sku: string; quantity: number }): DeliveryQuote {
    return { sku, days: sku === 'book' ? 2 : 4, priceCents: 499 + 100 * Math.max(0, quantity - 1) };
  }
}

/**
 * Starts the fulfilment microservice as an app of its own (its own module and connection), on the
 * orders app's Redis and key prefix. `npm start` starts it beside the orders app; in production
 * it is its own deployment.
 */
export async function startFulfilmentService(redisUrl: string, logger?: LoggerService | false): Promise<INestMicroservice> {
  @Module({
    imports: [RedisPatternsModule.forRoot({ connection: { url: redisUrl }, keyPrefix: 'sample:' })],
    controllers: [FulfilmentController],
  })
  class FulfilmentModule {}
  const created: { app?: INestMicroservice } = {};
  const server = new RedisStreamsServer({ app: () => created.app as INestMicroservice, service: 'fulfilment', maxDeliveries: 3 });
  const app = await NestFactory.createMicroservice(FulfilmentModule, { strategy: server, logger });
  created.app = app;
  await app.listen();
  return app;
}
