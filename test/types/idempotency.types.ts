/**
 * Compile-time checks of the idempotency options (see public-api.types.ts): run by `npm run
 * typecheck`; each `@ts-expect-error` line must fail to compile. Nothing here runs.
 */
import type { Request } from 'express';
import type { FastifyRequest } from 'fastify';
import type { IdempotencyOptions, RedisPatternsModuleOptions } from '../../lib/index.js';

// `user` reads the request as the app types it, on Express or Fastify, or as the library does.
export const express: IdempotencyOptions = { user: (request: Request) => request.get('x-tenant') };
export const fastify: IdempotencyOptions = { user: (request: FastifyRequest) => request.headers['x-tenant'] };
export const plain: IdempotencyOptions = { user: (request) => request.user?.accountId };

export const module: Pick<RedisPatternsModuleOptions, 'idempotency'> = { idempotency: { ttl: '1h', onStoreError: 'open' } };
// @ts-expect-error onStoreError is 'open' or 'closed'
export const wrong: Pick<RedisPatternsModuleOptions, 'idempotency'> = { idempotency: { onStoreError: 'retry' } };
