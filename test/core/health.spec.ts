import { Controller, Get, type INestApplication } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import { describe, expect, it } from 'vitest';
import { RedisHealthIndicator, RedisPatternsModule, type RedisConnectionOptions } from '../../lib/index.js';
import { clusterConnection } from '../support/testing-app.js';
import { ownRedisServer } from '../support/own-redis-server.js';

type HealthBody = { status: string; details: Record<string, unknown>; error: Record<string, unknown> };

@Controller()
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly redis: RedisHealthIndicator,
  ) {}

  @Get('health')
  @HealthCheck()
  check() {
    return this.health.check([() => this.redis.isHealthy('redis', { timeout: '300ms' })]);
  }
}

async function startHttp(connection: RedisConnectionOptions): Promise<{ app: INestApplication; url: string }> {
  const moduleRef = await Test.createTestingModule({
    imports: [TerminusModule.forRoot({ logger: false }), RedisPatternsModule.forRoot({ connection, commandTimeout: '300ms' })],
    controllers: [HealthController],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.listen(0, '127.0.0.1');
  return { app, url: `${await app.getUrl()}/health` };
}

describe('RedisHealthIndicator with @nestjs/terminus', () => {
  const own = ownRedisServer();

  it('reports up, then down (503) while the server is stopped, then up again', async () => {
    const { app, url } = await startHttp(own.server.address);
    const up = await fetch(url);
    expect(up.status).toBe(200);
    expect(((await up.json()) as HealthBody).details.redis).toMatchObject({
      status: 'up',
      connection: 'default',
      mode: 'standalone',
      responseTimeMs: expect.any(Number),
    });

    await own.server.stop();
    const down = await fetch(url);
    expect(down.status).toBe(503);
    const body = (await down.json()) as HealthBody;
    expect(body.status).toBe('error');
    expect(body.error.redis).toMatchObject({ status: 'down', connection: 'default', message: expect.any(String) });

    await own.server.start();
    await expect.poll(async () => (await fetch(url)).status, { timeout: 10_000, interval: 100 }).toBe(200);
    await app.close();
  });

  it('on a cluster, reports cluster_state', async () => {
    const { app, url } = await startHttp(clusterConnection());
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(((await response.json()) as HealthBody).details.redis).toMatchObject({ status: 'up', mode: 'cluster', clusterState: 'ok' });
    await app.close();
  });
});
