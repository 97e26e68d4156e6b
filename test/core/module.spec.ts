import { Inject, Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import {
  InjectCodec,
  InjectRedis,
  JsonCodec,
  REDIS_CLIENT,
  RedisConnections,
  RedisKeys,
  RedisPatternsModule,
  UnknownConnectionError,
  type RedisCodec,
  type RedisPatternsModuleOptions,
} from '../../lib/index.js';
import { standaloneConnection, uniquePrefix } from '../support/testing-app.js';

@Injectable()
class UsesRedis {
  constructor(
    @InjectRedis() readonly redis: Redis,
    @InjectCodec() readonly codec: RedisCodec,
    readonly keys: RedisKeys,
  ) {}
}

const CONFIG = Symbol('config');

@Module({ providers: [{ provide: CONFIG, useFactory: () => ({ prefix: 'async:' }) }], exports: [CONFIG] })
class ConfigModule {}

@Injectable()
class OptionsFactory {
  createRedisPatternsOptions(): RedisPatternsModuleOptions {
    return { connection: standaloneConnection(), keyPrefix: 'from-class:' };
  }
}

@Module({ providers: [OptionsFactory], exports: [OptionsFactory] })
class OptionsFactoryModule {}

describe('RedisPatternsModule', () => {
  let app: INestApplicationContext | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  async function start(imports: unknown[], providers: unknown[] = [UsesRedis]): Promise<INestApplicationContext> {
    const moduleRef = await Test.createTestingModule({ imports: imports as never[], providers: providers as never[] }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    return app.init();
  }

  it('forRoot provides a working client, the codec and the key builder', async () => {
    const prefix = uniquePrefix();
    await start([RedisPatternsModule.forRoot({ connection: standaloneConnection(), keyPrefix: prefix })]);
    const service = app!.get(UsesRedis);
    const key = service.keys.key('module', 'forRoot');
    expect(key).toBe(`${prefix}module:forRoot`);
    await service.redis.set(key, service.codec.encode({ at: new Date(7) }));
    expect(service.codec.decode((await service.redis.get(key)) as string)).toEqual({ at: new Date(7) });
    expect(service.codec).toBeInstanceOf(JsonCodec);
  });

  it('forRootAsync with useFactory and inject', async () => {
    await start([
      RedisPatternsModule.forRootAsync({
        imports: [ConfigModule],
        inject: [CONFIG],
        useFactory: (config: { prefix: string }) => ({ connection: standaloneConnection(), keyPrefix: config.prefix }),
      }),
    ]);
    const service = app!.get(UsesRedis);
    expect(service.keys.key('x')).toBe('async:x');
    expect(await service.redis.ping()).toBe('PONG');
  });

  it('forRootAsync with useClass', async () => {
    await start([RedisPatternsModule.forRootAsync({ useClass: OptionsFactory })]);
    expect(app!.get(UsesRedis).keys.key('x')).toBe('from-class:x');
  });

  it('forRootAsync with useExisting', async () => {
    await start([RedisPatternsModule.forRootAsync({ imports: [OptionsFactoryModule], useExisting: OptionsFactory })]);
    expect(app!.get(UsesRedis).keys.key('x')).toBe('from-class:x');
  });

  it('isGlobal makes the providers injectable from modules that do not import it', async () => {
    @Module({ providers: [UsesRedis], exports: [UsesRedis] })
    class FeatureModule {}
    await start([RedisPatternsModule.forRoot({ connection: standaloneConnection(), isGlobal: true }), FeatureModule], []);
    expect(await app!.get(UsesRedis).redis.ping()).toBe('PONG');
  });

  it('without isGlobal, a module that does not import it cannot inject the client', async () => {
    @Module({ providers: [UsesRedis] })
    class FeatureModule {}
    const error = await start([RedisPatternsModule.forRoot({ connection: standaloneConnection() }), FeatureModule], []).catch(
      (caught: unknown) => caught,
    );
    expect(String(error)).toMatch(/can't resolve dependencies of the UsesRedis/i);
  });

  it('gives named connections through RedisConnections, and names the unknown ones', async () => {
    await start([RedisPatternsModule.forRoot({ connection: standaloneConnection(), connections: { second: standaloneConnection() } })], []);
    const connections = app!.get(RedisConnections);
    expect(connections.names()).toEqual(['default', 'second']);
    expect(connections.get('second')).not.toBe(connections.get());
    expect(await connections.get('second').ping()).toBe('PONG');
    expect(app!.get(REDIS_CLIENT)).toBe(connections.get('default'));
    expect(() => connections.get('third')).toThrow(UnknownConnectionError);
    expect(() => connections.get('third')).toThrow('No Redis connection named "third"; configured: default, second.');
  });

  @Injectable()
  class Consumer {
    constructor(@Inject(REDIS_CLIENT) readonly redis: Redis) {}
  }

  it('the client is ready once the application has initialised', async () => {
    await start([RedisPatternsModule.forRoot({ connection: standaloneConnection() })], [Consumer]);
    expect(app!.get(Consumer).redis.status).toBe('ready');
  });

  it('uses a codec plugged in by the user', async () => {
    const base64Codec: RedisCodec = {
      binary: true,
      encode: (value) => Buffer.from(JSON.stringify(value)).toString('base64'),
      decode: <T>(raw: string | Buffer) => JSON.parse(Buffer.from(raw.toString(), 'base64').toString()) as T,
    };
    await start([RedisPatternsModule.forRoot({ connection: standaloneConnection(), codec: base64Codec })]);
    const service = app!.get(UsesRedis);
    expect(service.codec).toBe(base64Codec);
    const key = service.keys.key('custom-codec');
    await service.redis.set(key, service.codec.encode({ n: 1 }));
    expect(await service.redis.get(key)).toBe('eyJuIjoxfQ==');
    expect(service.codec.decode((await service.redis.get(key)) as string)).toEqual({ n: 1 });
  });
});
