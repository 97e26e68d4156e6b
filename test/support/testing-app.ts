import { randomUUID } from 'node:crypto';
import type { INestApplicationContext, ModuleMetadata } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { inject } from 'vitest';
import { RedisPatternsModule, type REDIS_PATTERNS_OPTIONS_TYPE, type RedisPatternsModuleOptions } from '../../lib/index.js';

/** A key prefix no other test uses, so suites can share the servers. */
export function uniquePrefix(): string {
  return `t${randomUUID().slice(0, 8)}:`;
}

/** Connection options for the shared standalone server. */
export function standaloneConnection(): RedisPatternsModuleOptions['connection'] {
  const { host, port } = inject('redis').standalone;
  return { host, port };
}

/** Connection options for the shared 3-master cluster. */
export function clusterConnection(): RedisPatternsModuleOptions['connection'] {
  return { cluster: { nodes: inject('redis').cluster } };
}

/** Starts an application context with the module configured as given (plus any extra metadata). */
export async function startContext(
  options: typeof REDIS_PATTERNS_OPTIONS_TYPE,
  extra: ModuleMetadata = {},
): Promise<INestApplicationContext> {
  const moduleRef = await Test.createTestingModule({
    ...extra,
    imports: [RedisPatternsModule.forRoot({ keyPrefix: uniquePrefix(), ...options }), ...(extra.imports ?? [])],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  return app;
}

/**
 * Options for a suite that stops its own server: commands give up after 300ms and connections
 * come back within a tenth of a second of the server, so an outage and its end show at once.
 */
export const QUICK_OUTAGES = { commandTimeout: '300ms', reconnect: { minDelay: '20ms', maxDelay: '100ms' } } as const;

/**
 * For suites that clear or invalidate in bulk on a Cluster many times: each moves 16,384 epochs
 * (one pipeline per master) first, a few milliseconds on an idle machine but more than the default
 * 1s `commandTimeout` on a 2-CPU machine shared by several test runs.
 */
export const SLOW_BULK_OPERATIONS = { commandTimeout: '5s' } as const;

/** Both topologies every Redis-touching suite runs against. */
export const topologies = [
  { topology: 'standalone', connection: standaloneConnection },
  { topology: 'cluster', connection: clusterConnection },
] as const;
