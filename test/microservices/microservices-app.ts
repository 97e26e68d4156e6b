import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { filter, firstValueFrom } from 'rxjs';
import { RedisPatternsModule, type RedisConnectionOptions } from '../../lib/index.js';
import {
  RedisStreamsClient,
  RedisStreamsServer,
  type RedisStreamsClientOptions,
  type RedisStreamsServerOptions,
} from '../../lib/microservices/index.js';
import { uniquePrefix } from '../support/testing-app.js';
import { MathController, Seen } from './microservices.controller.js';

/** An app serving MathController over RedisStreamsServer, and a RedisStreamsClient on the same module. */
export interface ServiceApp {
  app: INestApplication;
  server: RedisStreamsServer;
  client: RedisStreamsClient;
  seen: Seen;
  close(): Promise<void>;
}

export async function startServiceApp(
  connection: RedisConnectionOptions,
  {
    keyPrefix = uniquePrefix(),
    server: serverOptions = {},
    client: clientOptions = {},
    listen = true,
    moduleOptions = {},
  }: {
    keyPrefix?: string;
    server?: Partial<RedisStreamsServerOptions>;
    client?: Partial<RedisStreamsClientOptions>;
    listen?: boolean;
    moduleOptions?: Record<string, unknown>;
  } = {},
): Promise<ServiceApp> {
  const moduleRef = await Test.createTestingModule({
    imports: [RedisPatternsModule.forRoot({ connection, keyPrefix, shutdownTimeout: '2s', ...moduleOptions })],
    controllers: listen ? [MathController] : [],
    providers: [Seen],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  const server = new RedisStreamsServer({
    app,
    service: 'math',
    claimIdle: '2s',
    retryBackoff: { min: '20ms', max: '100ms' },
    ...serverOptions,
  });
  if (listen) app.connectMicroservice({ strategy: server });
  // Nest's order: the microservices first, then init (the server starts reading once the module is connected).
  await app.startAllMicroservices();
  await app.init();
  if (listen) await firstValueFrom(server.status.pipe(filter((status) => status === 'connected')));
  const client = new RedisStreamsClient({ app, timeout: '5s', ...clientOptions });
  await client.connect();
  return {
    app,
    server,
    client,
    seen: app.get(Seen),
    close: async () => {
      await client.close();
      await app.close();
    },
  };
}
