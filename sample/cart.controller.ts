import {
  BadRequestException,
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Inject,
  Injectable,
  Post,
  Req,
  type NestMiddleware,
} from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import session from 'express-session';
import { SessionService } from '../lib/index.js';
import { RedisSessionStore } from '../lib/session/express-session.store.js';

declare module 'express-session' {
  interface SessionData {
    cart?: string[];
  }
}

/** The secret that signs the cart cookie: the sample's SESSION_SECRET (see startSample). */
export const CART_SECRET = Symbol('cart-secret');

/** How long a cart lives without a request: the cookie's maxAge, which the store honours in Redis too. */
export const CART_MAX_AGE_MS = 10 * 60_000;

/**
 * express-session on `/cart`, with `RedisSessionStore`: what an app that already uses
 * express-session gets by switching its store. The cart expires in Redis with its cookie
 * (`rolling`: every request moves both), ids are hashed before they become keys, and a cart that
 * ends is gone on every instance. The store is from `nestjs-redis-patterns/express-session`.
 */
@Injectable()
export class CartSessionMiddleware implements NestMiddleware {
  private readonly handler: ReturnType<typeof session>;

  constructor(sessions: SessionService, @Inject(CART_SECRET) secret: string) {
    this.handler = session({
      name: 'cart',
      store: new RedisSessionStore(sessions),
      secret,
      resave: false,
      saveUninitialized: false,
      rolling: true,
      cookie: { maxAge: CART_MAX_AGE_MS, httpOnly: true, sameSite: 'lax', path: '/cart' },
    });
  }

  use(request: Request, response: Response, next: NextFunction): void {
    this.handler(request, response, next);
  }
}

/**
 * A shopping cart in an express-session session. Try it with a cookie jar:
 *
 * ```sh
 * curl -c jar -b jar -X POST -H 'content-type: application/json' -d '{"productId":"p-1"}' http://127.0.0.1:3000/cart/items
 * curl -c jar -b jar http://127.0.0.1:3000/cart
 * curl -c jar -b jar -X DELETE http://127.0.0.1:3000/cart
 * ```
 */
@Controller('cart')
export class CartController {
  @Get()
  items(@Req() request: Request): { items: string[] } {
    return { items: request.session.cart ?? [] };
  }

  @Post('items')
  @HttpCode(200)
  add(@Req() request: Request, @Body() body: { productId?: unknown } | undefined): { items: string[] } {
    const productId = body?.productId;
    if (typeof productId !== 'string' || productId === '' || productId.length > 64)
      throw new BadRequestException('productId (up to 64 characters) is required');
    request.session.cart = [...(request.session.cart ?? []), productId];
    return { items: request.session.cart };
  }

  /** Ends the cart's session: its key is deleted in Redis at once. */
  @Delete()
  async clear(@Req() request: Request): Promise<{ cleared: true }> {
    await new Promise<void>((resolve, reject) => request.session.destroy((error: unknown) => (error ? reject(error) : resolve())));
    return { cleared: true };
  }
}
