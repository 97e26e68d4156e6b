import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_CLIENT } from '../../lib/index.js';
import { freePort, RedisTestServer } from '../support/redis-server.js';
import { createTestCertificate, type TestCertificate } from '../support/tls.js';
import { startContext } from '../support/testing-app.js';

describe('TLS and ACL options are passed through', () => {
  let certificate: TestCertificate;
  let server: RedisTestServer;
  let tlsPort: number;
  beforeAll(async () => {
    certificate = createTestCertificate();
    tlsPort = await freePort();
    server = await RedisTestServer.start({
      args: [
        '--tls-port',
        String(tlsPort),
        '--tls-cert-file',
        certificate.certFile,
        '--tls-key-file',
        certificate.keyFile,
        '--tls-ca-cert-file',
        certificate.certFile,
        '--tls-auth-clients',
        'no',
      ],
    });
    const admin = await startContext({ connection: server.address });
    await admin.get<Redis>(REDIS_CLIENT).acl('SETUSER', 'app', 'on', '>app-secret', '~*', '+@all');
    await admin.close();
  });
  afterAll(() => server.destroy());

  it('connects over TLS with host, port and tls options, as an ACL user', async () => {
    const app = await startContext({
      connection: { host: '127.0.0.1', port: tlsPort, username: 'app', password: 'app-secret', tls: { ca: certificate.cert } },
    });
    const redis = app.get<Redis>(REDIS_CLIENT);
    expect(await redis.acl('WHOAMI')).toBe('app');
    expect(await redis.client('INFO')).toMatch(/ user=app /);
    await app.close();
  });

  it('connects over TLS with a rediss:// URL', async () => {
    const app = await startContext({
      connection: { url: `rediss://app:app-secret@127.0.0.1:${tlsPort}`, options: { tls: { ca: certificate.cert } } },
    });
    expect(await app.get<Redis>(REDIS_CLIENT).acl('WHOAMI')).toBe('app');
    await app.close();
  });

  it('refuses a server whose certificate is not trusted', async () => {
    const app = await startContext({ connection: { host: '127.0.0.1', port: tlsPort, tls: true }, connectTimeout: '300ms' });
    await expect(app.get<Redis>(REDIS_CLIENT).ping()).rejects.toThrow();
    await app.close();
  });

  it('fails commands with a wrong password instead of hanging', async () => {
    const app = await startContext({ connection: { ...server.address, username: 'app', password: 'wrong' }, connectTimeout: '300ms' });
    await expect(app.get<Redis>(REDIS_CLIENT).ping()).rejects.toThrow();
    await app.close();
  });
});
