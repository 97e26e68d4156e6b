import { Test } from '@nestjs/testing';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError, RedisPatternsModule, type RedisPatternsModuleOptions } from '../../lib/index.js';

async function initWith(options: unknown): Promise<unknown> {
  const moduleRef = await Test.createTestingModule({
    imports: [RedisPatternsModule.forRoot(options as RedisPatternsModuleOptions)],
  }).compile();
  await moduleRef.close();
  return undefined;
}

describe('module options are validated at startup', () => {
  it.each([
    [
      {},
      'connection',
      /expected an object with one of url, host\/port, cluster, sentinel or client, got nothing: it is missing \(undefined\)\.$/,
    ],
    [
      { connection: { url: undefined } },
      'connection.url',
      /expected a redis:\/\/ or rediss:\/\/ URL \(it is given but undefined: is the environment variable it comes from set\?\), got nothing: it is missing \(undefined\)\.$/,
    ],
    [{ connection: { url: undefined, options: { db: 1 } } }, 'connection.url', /it is given but undefined/],
    [
      { connection: { url: 'http://localhost:6379' } },
      'connection.url',
      /expected a redis:\/\/ or rediss:\/\/ URL, got "http:\/\/localhost:6379"/,
    ],
    [
      { connection: { url: 'redis://x', host: 'y' } },
      'connection.host',
      /expected one of the known options \(url, options\), got an unknown option\.$/,
    ],
    [
      { connection: { url: 'redis://x', cluster: { nodes: [] } } },
      'connection',
      /expected only one of url, cluster, sentinel, client, got "url and cluster together"/,
    ],
    [{ connection: { host: '' } }, 'connection.host', /expected a non-empty string/],
    [{ connection: { port: 70000 } }, 'connection.port', /expected a port number from 1 to 65535, got 70000/],
    [{ connection: { db: -1 } }, 'connection.db', /expected an integer of 0 or more, got -1/],
    [{ connection: { password: 42 } }, 'connection.password', /expected a string, got a number\.$/],
    [{ connection: { tls: 'yes' } }, 'connection.tls', /expected true or an object of tls.connect options/],
    [{ connection: { cluster: { nodes: [] } } }, 'connection.cluster.nodes', /expected a non-empty array/],
    [
      { connection: { cluster: { nodes: ['localhost'] } } },
      'connection.cluster.nodes[0]',
      /expected a "host:port" string, got "localhost"/,
    ],
    [
      { connection: { sentinel: { sentinels: [{ host: 'h', port: 1 }] } } },
      'connection.sentinel.name',
      /expected a non-empty string, got nothing: it is missing \(undefined\)\.$/,
    ],
    [
      { connection: { sentinel: { sentinels: [{ host: 'h', port: 0 }], name: 'm' } } },
      'connection.sentinel.sentinels[0].port',
      /expected a port number/,
    ],
    [
      { connection: { client: { get: () => null } } },
      'connection.client',
      /expected an ioredis Redis or Cluster instance, got an object \(Object\)/,
    ],
    [{ connection: {}, connections: { default: {} } }, 'connections.default', /expected a name other than "default"/],
    [{ connection: {}, connections: { lockB: { port: 'x' } } }, 'connections.lockB.port', /expected a port number/],
    [{ connection: {}, keyPrefix: 'app{1}:' }, 'keyPrefix', /without \{, \}, \*, \?, \[, \] or \\/],
    [{ connection: {}, keyPrefix: 7 }, 'keyPrefix', /expected a string/],
    [
      { connection: {}, commandTimeout: '1 second' },
      'commandTimeout',
      /expected a non-negative number of milliseconds or a string such as '250ms'/,
    ],
    [{ connection: {}, commandTimeout: 0 }, 'commandTimeout', /expected a duration greater than 0, got 0/],
    [{ connection: {}, connectTimeout: -5 }, 'connectTimeout', /expected a non-negative number/],
    [{ connection: {}, shutdownTimeout: 'soon' }, 'shutdownTimeout', /expected a non-negative number/],
    [{ connection: {}, commandTimeout: '30d' }, 'commandTimeout', /expected a duration of at most 24 days \(2147483647ms\), got "30d"/],
    [
      { connection: { sentinel: { sentinels: ['s1:26379'], name: 'm', sentinelTls: 'yes' } } },
      'connection.sentinel.sentinelTls',
      /expected true or an object of tls.connect options/,
    ],
    [{ connection: {}, reconnect: { minDelay: '1s', maxDelay: '10ms' } }, 'reconnect.maxDelay', /at least reconnect.minDelay \(1000ms\)/],
    [{ connection: {}, reconnect: { min: 1 } }, 'reconnect.min', /expected one of the known options \(minDelay, maxDelay\)/],
    [{ connection: {}, offlineQueue: 'no' }, 'offlineQueue', /expected true or false, got "no"/],
    [{ connection: {}, codec: { encode: JSON.stringify } }, 'codec', /expected an object with encode\(value\) and decode\(raw\) methods/],
    [
      { connection: {}, commandTimout: '1s' },
      'commandTimout',
      /expected one of the known options \(connection, connections, keyPrefix, commandTimeout/,
    ],
  ])('%j fails on option %s', async (options, option, message) => {
    const error = await initWith(options).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as InvalidOptionError).option).toBe(option);
    expect((error as Error).message).toContain(`Invalid option "${option}"`);
    expect((error as Error).message).toMatch(message);
  });
});
