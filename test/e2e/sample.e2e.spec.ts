import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startSample, type RunningSample } from '../../sample/sample.js';
import { command } from '../support/redis-server.js';

async function getJson(url: string): Promise<{ status: number; body: any }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.json() };
}

describe('sample app with REDIS_URL', () => {
  let sample: RunningSample;
  beforeAll(async () => {
    const { host, port } = inject('redis').standalone;
    sample = await startSample({ port: 0, redisUrl: `redis://${host}:${port}`, logger: false });
  });
  afterAll(() => sample.close());

  it('uses the given server and starts none of its own', () => {
    expect(sample.ownRedis).toBeUndefined();
  });

  it('GET /health reports Redis up', async () => {
    const { status, body } = await getJson(`${sample.url}/health`);
    expect(status).toBe(200);
    expect(body.info.redis).toMatchObject({ status: 'up', mode: 'standalone' });
  });

  it('GET /visits/:page counts in Redis, with the user-supplied part encoded', async () => {
    const page = `p${Date.now()}:*`;
    const first = await getJson(`${sample.url}/visits/${encodeURIComponent(page)}`);
    const second = await getJson(`${sample.url}/visits/${encodeURIComponent(page)}`);
    expect(first.body).toEqual({ page, key: `sample:visits:${page.replace(':', '%3A').replace('*', '%2A')}`, visits: 1 });
    expect(second.body.visits).toBe(2);
  });
});

describe('sample app without REDIS_URL', () => {
  it('starts its own redis-server and stops it on close', async () => {
    const sample = await startSample({ port: 0, logger: false });
    const port = sample.ownRedis!.port;
    expect((await getJson(`${sample.url}/health`)).status).toBe(200);
    await sample.close();
    await expect(command(port, 'PING')).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe('`npm start`, as a newcomer runs it', () => {
  it('builds, starts with its own Redis, serves /health, and stops cleanly on SIGINT', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0' };
    delete env.REDIS_URL;
    const child = spawn('npm', ['start'], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));

    try {
      await expect.poll(() => /Listening on (http:\/\/\S+) /.exec(output)?.[1], { timeout: 60_000, interval: 200 }).toBeDefined();
      const url = /Listening on (http:\/\/\S+) /.exec(output)![1];
      const redisPort = Number(/started redis-server at redis:\/\/127\.0\.0\.1:(\d+)/.exec(output)![1]);
      expect((await getJson(`${url}/health`)).body.info.redis.status).toBe('up');

      // Ctrl-C reaches the whole process group (npm, and the app under it), as in a terminal.
      process.kill(-child.pid!, 'SIGINT');
      await expect.poll(() => output, { timeout: 10_000 }).toContain('Redis connection "default" closed');
      await expect.poll(() => command(redisPort, 'PING').then(() => 'up', (error: Error) => error.message), { timeout: 10_000 }).toMatch(/ECONNREFUSED/);
    } finally {
      // Whatever failed above, leave no app or redis-server behind.
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }, 90_000);
});
