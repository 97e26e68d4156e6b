import {
  BadRequestException,
  Body,
  ConflictException,
  Controller,
  Get,
  HttpCode,
  NotFoundException,
  Param,
  Post,
  type OnModuleInit,
} from '@nestjs/common';
import type { Redis } from 'ioredis';
import { InjectRedis, RedisKeys, TransactionService } from '../lib/index.js';

const ACCOUNT = /^[a-z]{1,32}$/;
/** The sample's accounts and their opening balances, set at startup unless they exist. */
const OPENING = { alice: 100, bob: 100 };

/** An account's key: one hash tag, so any two accounts share a Cluster slot (a transaction's keys must). */
const accountKey = (id: string) => `{bank}:account:${id}`;

function checkAccount(id: unknown, name: string): string {
  if (typeof id !== 'string' || !ACCOUNT.test(id)) throw new BadRequestException(`${name} must be an account id of 1 to 32 letters a-z`);
  return id;
}

/**
 * Optimistic transactions (WATCH/MULTI/EXEC, retried on conflict):
 * `curl -X POST -H 'content-type: application/json' -d '{"from":"alice","to":"bob","amount":30}' http://127.0.0.1:3000/accounts/transfer`
 * moves money between two accounts, never below zero, however many transfers run at once on
 * however many instances; `GET /accounts/alice` reads a balance.
 */
@Controller('accounts')
export class AccountsController implements OnModuleInit {
  constructor(
    private readonly transactions: TransactionService,
    @InjectRedis() private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  async onModuleInit(): Promise<void> {
    // Without Redis the sample still starts; the accounts are opened on the next start.
    for (const [id, balance] of Object.entries(OPENING))
      await this.redis.set(`${this.keys.prefix}${accountKey(id)}`, balance, 'NX').catch(() => undefined);
  }

  @Get(':id')
  async balance(@Param('id') id: string): Promise<{ id: string; balance: number }> {
    const stored = await this.redis.get(`${this.keys.prefix}${accountKey(checkAccount(id, 'id'))}`);
    if (stored === null) throw new NotFoundException(`no account ${id}`);
    return { id, balance: Number(stored) };
  }

  /** 409 when the balance is short (or the accounts stayed contended past the retries), 503 when Redis is away. */
  @Post('transfer')
  @HttpCode(200)
  async transfer(@Body() body: { from?: unknown; to?: unknown; amount?: unknown } = {}) {
    const from = checkAccount(body.from, 'from');
    const to = checkAccount(body.to, 'to');
    const amount = body.amount;
    if (from === to) throw new BadRequestException('from and to must be two different accounts');
    if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount <= 0)
      throw new BadRequestException('amount must be a positive integer');
    const [source, target] = [accountKey(from), accountKey(to)];
    const outcome = await this.transactions.optimistic([source, target], async (tx) => {
      const [balance, other] = await tx.mget(source, target);
      if (balance === null || other === null) return tx.abort('no such account');
      if (Number(balance) < amount) return tx.abort('insufficient funds');
      tx.incrby(source, -amount);
      tx.incrby(target, amount);
      return Number(balance) - amount;
    });
    if (!outcome.committed) throw new ConflictException(outcome.reason);
    return { from, to, amount, balance: outcome.result, attempts: outcome.attempts };
  }
}
