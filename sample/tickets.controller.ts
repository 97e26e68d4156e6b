import { BadRequestException, Body, Controller, Get, Injectable, Param, Post } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { InjectRedis, LockService, RedisKeys, WithLock } from '../lib/index.js';

export interface ServedTicket {
  desk: string;
  customer: string;
  /** 1 for the desk's first customer, then 2, 3... */
  position: number;
  /** The fencing token of the desk's lock while this customer was served. */
  fencingToken: number;
}

/** How long serving one customer takes (pretend work). */
const SERVICE_MS = 20;

/**
 * A ticket desk that serves one customer at a time, in the order they came, whichever instance
 * their request reached. `@WithLock` with `fair: true` puts each request in line in Redis; when
 * the customer before is done, the next one is told (over pub/sub) and served at once. Without
 * `fair`, waiting requests would retry at random moments and whoever retried first would win.
 */
@Injectable()
export class TicketDesk {
  constructor(
    @InjectRedis() private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly locks: LockService,
  ) {}

  @WithLock<[string, string]>({ key: (desk) => `desk:${desk}`, fair: true, wait: '30s', ttl: '10s' })
  async serve(desk: string, customer: string): Promise<ServedTicket> {
    const { fencingToken } = this.locks.current()!;
    await sleep(SERVICE_MS);
    const position = await this.redis.rpush(this.servedKey(desk), customer);
    return { desk, customer, position, fencingToken };
  }

  /** The customers served at the desk, in order. */
  served(desk: string): Promise<string[]> {
    return this.redis.lrange(this.servedKey(desk), 0, -1);
  }

  private servedKey(desk: string): string {
    return this.keys.key('desk-served', desk);
  }
}

/**
 * `curl -X POST -H 'content-type: application/json' -d '{"customer":"ann"}' http://127.0.0.1:3000/desks/1/tickets`
 * waits for the customer's turn at desk 1 (up to 30 s: 409 after that; 503 when Redis is down), and
 * answers when they were served. Several at once are served in the order they came:
 * `for c in ann bob cy; do curl -s -X POST -H 'content-type: application/json' -d "{\"customer\":\"$c\"}" http://127.0.0.1:3000/desks/1/tickets & sleep 0.1; done; wait`
 */
@Controller('desks')
export class TicketsController {
  constructor(private readonly desk: TicketDesk) {}

  @Post(':desk/tickets')
  take(@Param('desk') desk: string, @Body() body: { customer?: unknown } = {}): Promise<ServedTicket> {
    const { customer } = body;
    if (typeof customer !== 'string' || customer.length === 0 || customer.length > 64 || !customer.isWellFormed())
      throw new BadRequestException('customer must be a name of 1 to 64 characters');
    // A desk that is not well-formed text is a MalformedTextError from the lock: a 400 by itself.
    return this.desk.serve(desk, customer);
  }

  /** `curl http://127.0.0.1:3000/desks/1/served`: the customers served, in order. */
  @Get(':desk/served')
  async served(@Param('desk') desk: string): Promise<{ desk: string; served: string[] }> {
    return { desk, served: await this.desk.served(desk) };
  }
}
