import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BadRequestException,
  Body,
  Controller,
  Get,
  Header,
  Injectable,
  NotFoundException,
  Patch,
  Post,
  Put,
  Res,
  ServiceUnavailableException,
  type CanActivate,
  type ExecutionContext,
  type INestApplication,
  type Type,
} from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { Idempotent, RedisPatternsModule, type REDIS_PATTERNS_OPTIONS_TYPE } from '../../lib/index.js';

/** How many times each handler ran, over every app instance of the process. */
export const runs = new Map<string, number>();
const ran = (name: string) => runs.set(name, (runs.get(name) ?? 0) + 1).get(name)!;

/** Plays authentication: `x-user` becomes `request.user`. */
@Injectable()
class FakeAuth implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<{ headers: Record<string, string>; user?: { id: string } }>();
    if (request.headers['x-user']) request.user = { id: request.headers['x-user'] };
    return true;
  }
}

interface Payment {
  amount: number;
  /** How long the handler takes. */
  delayMs?: number;
}

type HeaderSetter = { header(name: string, value: string): unknown };

@Controller('payments')
export class PaymentsController {
  /** A new payment: an id and a random receipt each run, a Location, an ETag and a header that is not replayed. */
  @Post()
  @Idempotent()
  async create(@Body() payment: Payment, @Res({ passthrough: true }) response: HeaderSetter) {
    const run = ran('create');
    if (payment.delayMs) await sleep(payment.delayMs);
    const id = randomUUID();
    response.header('Location', `/payments/${id}`);
    response.header('ETag', `"${run}"`);
    response.header('X-Run', String(run));
    return { id, amount: payment.amount, receipt: randomUUID(), run };
  }

  @Put('text')
  @Idempotent()
  @Header('Content-Type', 'text/plain; charset=utf-8')
  text(@Body() body: { text: string }): string {
    return `${body.text} #${ran('text')} ${randomUUID()}`;
  }

  @Patch('empty')
  @Idempotent()
  empty(): void {
    ran('empty');
  }

  @Post('crash')
  @Idempotent()
  crash(): never {
    ran('crash');
    throw new Error('the handler failed');
  }

  @Post('unavailable')
  @Idempotent()
  unavailable(): never {
    ran('unavailable');
    throw new ServiceUnavailableException('try later');
  }

  @Post('invalid')
  @Idempotent()
  invalid(): never {
    throw new BadRequestException(`invalid payment, run ${ran('invalid')}`);
  }

  @Post('missing')
  @Idempotent({ storeClientErrors: false })
  missing(): never {
    throw new NotFoundException(`no such account, run ${ran('missing')}`);
  }

  @Post('required')
  @Idempotent({ required: true })
  required() {
    return { run: ran('required') };
  }

  @Post('short')
  @Idempotent({ ttl: '300ms' })
  short() {
    return { run: ran('short') };
  }

  @Post('open')
  @Idempotent({ onStoreError: 'open' })
  open() {
    return { run: ran('open') };
  }

  @Post('big')
  @Idempotent()
  big(@Body() body: { bytes: number }) {
    return { run: ran('big'), padding: 'x'.repeat(body.bytes) };
  }

  /** Sends its own response (`@Res()` without passthrough), on Express (`json`) or Fastify (`send`). */
  @Post('manual')
  @Idempotent()
  manual(@Res() response: { status(code: number): unknown; json?(body: unknown): unknown; send(body: unknown): unknown }): void {
    response.status(202);
    const body = { run: ran('manual'), receipt: randomUUID() };
    if (response.json) response.json(body);
    else response.send(body);
  }

  @Get('read')
  @Idempotent({ required: true })
  read() {
    return { run: ran('read') };
  }
}

/** `@Idempotent()` on the class (keys required) and, overriding it, on a handler. */
@Controller('refunds')
@Idempotent({ required: true })
export class RefundsController {
  @Post()
  create() {
    return { run: ran('refund') };
  }

  @Post('optional')
  @Idempotent()
  optional() {
    return { run: ran('refund-optional') };
  }
}

export const platforms = [
  { platform: 'Express', adapter: () => new ExpressAdapter() },
  { platform: 'Fastify', adapter: () => new FastifyAdapter() },
] as const;

/** An HTTP app of the test controller (or `controllers`) on `adapter`, listening on a free port; `url` is its base URL. */
export async function startHttpApp(
  adapter: ExpressAdapter | FastifyAdapter,
  options: typeof REDIS_PATTERNS_OPTIONS_TYPE,
  controllers: Type[] = [PaymentsController, RefundsController],
): Promise<{ app: INestApplication; url: string }> {
  const moduleRef = await Test.createTestingModule({
    imports: [RedisPatternsModule.forRoot(options)],
    controllers,
    providers: [{ provide: APP_GUARD, useClass: FakeAuth }],
  }).compile();
  const app = moduleRef.createNestApplication(adapter, { logger: false });
  await app.listen(0, '127.0.0.1');
  return { app, url: (await app.getUrl()).replace('[::1]', '127.0.0.1') };
}

/** A response as the client received it: status, headers and the body's bytes. */
export interface Received {
  status: number;
  headers: Headers;
  bytes: Buffer;
  json(): any;
}

/** Sends a request with an optional idempotency key (a string, or several header values) and reads the whole response. */
export async function send(
  url: string,
  {
    method = 'POST',
    key,
    body,
    headers = {},
  }: { method?: string; key?: string | string[]; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Received> {
  const requestHeaders = new Headers(headers);
  for (const value of key === undefined ? [] : Array.isArray(key) ? key : [key]) requestHeaders.append('idempotency-key', value);
  if (body !== undefined) requestHeaders.set('content-type', 'application/json');
  const response = await fetch(url, { method, headers: requestHeaders, body: body === undefined ? undefined : JSON.stringify(body) });
  const bytes = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, bytes, json: () => JSON.parse(bytes.toString()) };
}
