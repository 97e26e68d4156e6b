import { ConflictException, Injectable, Logger, NotFoundException, UnprocessableEntityException } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockService, WithLock } from '../lib/index.js';
import { Database } from './database.js';

/** What an order still owes, in the `order_balances` table. */
export interface OrderBalance {
  orderId: string;
  totalCents: number;
  balanceCents: number;
  status: 'open' | 'paid';
  /** The fencing token of the last lock holder that wrote this row (0: none yet). */
  fencingToken: number;
}

/** One charge, in the `order_payments` table. */
export interface OrderPayment {
  amountCents: number;
  fencingToken: number;
  paidAt: string;
}

interface OrderBalanceRow {
  order_id: string;
  total_cents: number;
  balance_cents: number;
  status: 'open' | 'paid';
  fencing_token: number | string; // bigint: a string from pg, a number from PGlite
}

interface OrderPaymentRow {
  amount_cents: number;
  fencing_token: number | string;
  paid_at: Date | string;
}

const toBalance = (row: OrderBalanceRow): OrderBalance => ({
  orderId: row.order_id,
  totalCents: row.total_cents,
  balanceCents: row.balance_cents,
  status: row.status,
  fencingToken: Number(row.fencing_token),
});

/** How long the (pretend) payment provider takes to charge the card. */
const PROVIDER_DELAY_MS = 50;

/**
 * Payments of orders, with the balance in SQL. `pay` is a deliberately naive read-modify-write:
 * it reads the balance, charges the card (a pretend provider call that takes a moment), then
 * writes the new balance computed from what it read. Two payments of the same order running at
 * once, on one instance or on several, would both read the same balance and both charge the card:
 * the order is double-charged, and one of the two writes is lost. `@WithLock` on the order's key
 * runs them one after the other, across every instance; a payment waits up to 5s for its turn,
 * then gets 409 (`LockNotAcquiredError`). A payment waiting on the instance that held the lock
 * starts as soon as the one before released it, not at the end of its retry pause.
 */
@Injectable()
export class PaymentsService {
  private readonly logger = new Logger('Payments');

  constructor(
    private readonly db: Database,
    private readonly locks: LockService,
  ) {}

  /** Opens an order for payment: it owes `totalCents`. */
  async invoice(orderId: string, totalCents: number): Promise<OrderBalance> {
    const [row] = await this.db.query<OrderBalanceRow>(
      `insert into order_balances (order_id, total_cents, balance_cents) values ($1, $2, $2) on conflict (order_id) do nothing returning *`,
      [orderId, totalCents],
    );
    if (!row) throw new ConflictException(`Order ${orderId} is already invoiced`);
    return toBalance(row);
  }

  /** The order's balance and its payments, oldest first. */
  async find(orderId: string): Promise<(OrderBalance & { payments: OrderPayment[] }) | null> {
    const [row] = await this.db.query<OrderBalanceRow>('select * from order_balances where order_id = $1', [orderId]);
    if (!row) return null;
    const payments = await this.db.query<OrderPaymentRow>(
      'select amount_cents, fencing_token, paid_at from order_payments where order_id = $1 order by id',
      [orderId],
    );
    return {
      ...toBalance(row),
      payments: payments.map((payment) => ({
        amountCents: payment.amount_cents,
        fencingToken: Number(payment.fencing_token),
        paidAt: new Date(payment.paid_at).toISOString(),
      })),
    };
  }

  /**
   * Charges `amountCents` (default: all that is owed), holding the lock `order:<id>` (waiting up
   * to 5s for it; renewed while the payment runs, released when it ends).
   * @throws NotFoundException for an unknown order; UnprocessableEntityException when the order is
   * paid or owes less; ConflictException (409) when the lock stays busy for 5s, or when this
   * holder's fencing token is refused.
   */
  @WithLock<[string, number?]>({ key: (orderId) => `order:${orderId}`, wait: '5s' })
  async pay(orderId: string, amountCents?: number): Promise<OrderBalance & { chargedCents: number }> {
    const { fencingToken } = this.locks.current()!;

    // Read...
    const [row] = await this.db.query<OrderBalanceRow>('select * from order_balances where order_id = $1', [orderId]);
    if (!row) throw new NotFoundException(`No order ${orderId}`);
    const order = toBalance(row);
    if (order.status === 'paid') throw new UnprocessableEntityException(`Order ${orderId} is already paid`);
    const amount = amountCents ?? order.balanceCents;
    if (amount > order.balanceCents)
      throw new UnprocessableEntityException(`Order ${orderId} owes ${order.balanceCents} cents; ${amount} is too much`);

    // ...take a moment (charge the card; a real provider call would also carry an idempotency key)...
    await sleep(PROVIDER_DELAY_MS);

    // ...and write what was computed from the read, fenced.
    const balanceCents = order.balanceCents - amount;
    const status = balanceCents === 0 ? 'paid' : 'open';
    return { ...(await this.recordPayment(orderId, amount, balanceCents, status, fencingToken)), chargedCents: amount };
  }

  /**
   * Writes the new balance and the payment in one statement, only if no later lock holder has
   * written the order yet.
   *
   * Why the fencing token: the lock alone does not make this write safe. A holder can stall (a
   * long GC pause, a slow provider, a lost connection to Redis) until its lease runs out; another
   * instance then takes the lock, with a higher token, reads the balance and writes. When the
   * first holder wakes up it still believes it holds the lock and writes the balance it computed
   * from its stale read, undoing the other payment. So every write of an order stores the token
   * of its writer, and `where fencing_token < $token` refuses a write from a holder older than the
   * last writer: the stale holder's update matches no row, and it gets 409 instead. (The database
   * is the one place that sees both writes, so it is where the check has to be.)
   *
   * Tokens come from a counter in Redis that only grows, so that counter must outlive the data it
   * fences: with a fresh Redis (e.g. `npm start` without REDIS_URL) and a kept database
   * (DATABASE_URL), older orders refuse payments until the counter passes their stored token.
   */
  async recordPayment(
    orderId: string,
    amountCents: number,
    balanceCents: number,
    status: 'open' | 'paid',
    fencingToken: number,
  ): Promise<OrderBalance> {
    const [row] = await this.db.query<OrderBalanceRow>(
      `with charged as (
         update order_balances set balance_cents = $2, status = $3, fencing_token = $4
         where order_id = $1 and fencing_token < $4::bigint
         returning *
       ), payment as (
         insert into order_payments (order_id, amount_cents, fencing_token) select order_id, $5::integer, $4::bigint from charged
       )
       select * from charged`,
      [orderId, balanceCents, status, fencingToken, amountCents],
    );
    if (!row) {
      this.logger.warn(`Refused a write to order ${orderId} with the stale fencing token ${fencingToken}`);
      throw new ConflictException(`Order ${orderId} was written by a later lock holder; fencing token ${fencingToken} is stale`);
    }
    this.logger.log(`Order ${orderId}: charged ${amountCents} cents, ${balanceCents} left (fencing token ${fencingToken})`);
    return toBalance(row);
  }
}
