import { BadRequestException, Body, Controller, Get, NotFoundException, Param, Post } from '@nestjs/common';
import { Idempotent } from '../lib/index.js';
import { PaymentsService, type OrderBalance, type OrderPayment } from './payments.service.js';

function cents(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0)
    throw new BadRequestException(`${name} must be a positive whole number of cents`);
  return value;
}

/**
 * Paying orders, serialised per order by a distributed lock (see PaymentsService). Try ten
 * payments at once; the order is charged only as often as its balance allows:
 * `for i in $(seq 10); do curl -s -X POST -H 'content-type: application/json' -d '{"amountCents":300}' http://127.0.0.1:3000/orders/o-1/pay & done; wait`
 */
@Controller('orders')
export class PaymentsController {
  constructor(private readonly payments: PaymentsService) {}

  /** `curl -X POST -H 'content-type: application/json' -d '{"totalCents":1000}' http://127.0.0.1:3000/orders/o-1/invoice` */
  @Post(':id/invoice')
  invoice(@Param('id') id: string, @Body() body: { totalCents?: unknown }): Promise<OrderBalance> {
    return this.payments.invoice(id, cents(body?.totalCents, 'totalCents'));
  }

  /**
   * `curl -X POST -H 'content-type: application/json' -H 'Idempotency-Key: o-1-first-payment' -d '{"amountCents":300}' http://127.0.0.1:3000/orders/o-1/pay`
   * (no amount: pays what is owed). With an `Idempotency-Key`, a retry of the same payment (a
   * timeout, a double click) charges once: it gets the first answer again, `Idempotent-Replayed: true`.
   */
  @Post(':id/pay')
  @Idempotent()
  pay(@Param('id') id: string, @Body() body: { amountCents?: unknown }): Promise<OrderBalance & { chargedCents: number }> {
    const amount = body?.amountCents === undefined ? undefined : cents(body.amountCents, 'amountCents');
    return this.payments.pay(id, amount);
  }

  /** `curl http://127.0.0.1:3000/orders/o-1/payments` */
  @Get(':id/payments')
  async find(@Param('id') id: string): Promise<OrderBalance & { payments: OrderPayment[] }> {
    const order = await this.payments.find(id);
    if (!order) throw new NotFoundException(`No order ${id}`);
    return order;
  }
}
