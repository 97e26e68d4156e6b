import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LIBRARY_NAME, LIBRARY_VERSION } from '../lib/core/core.constants.js';

const root = new URL('../', import.meta.url);

describe('the published package', () => {
  it('builds to dist/ and loads by its name through the exports map, as ESM with types', () => {
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'pipe' });
    const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
    expect(pkg.type).toBe('module');
    expect(pkg.exports['.']).toMatchObject({ types: './dist/index.d.ts', import: './dist/index.js' });
    expect(existsSync(new URL('dist/index.d.ts', root))).toBe(true);
    expect(existsSync(new URL('dist/module/redis-patterns.module.d.ts', root))).toBe(true);

    const script = `
      Promise.all([
        import('nestjs-redis-patterns'),
        import('nestjs-redis-patterns/express-session'),
        import('nestjs-redis-patterns/testing'),
        import('nestjs-redis-patterns/microservices'),
      ]).then(([lib, store, testing, microservices]) => {
        const codec = new lib.JsonCodec();
        console.log(JSON.stringify({
          store: typeof store.RedisSessionStore,
          testing: Object.keys(testing).sort(),
          microservices: Object.keys(microservices).sort(),
          exports: Object.keys(lib).sort(),
          forRoot: typeof lib.RedisPatternsModule.forRoot,
          roundTrip: codec.decode(codec.encode(new Map([[1, 2n]]))) instanceof Map,
        }));
      });`;
    const loaded = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' }));
    expect(loaded.forRoot).toBe('function');
    expect(loaded.store).toBe('function');
    expect(loaded.testing).toEqual([
      'RedisServerNotFoundError',
      'RedisTestCluster',
      'RedisTestSentinel',
      'RedisTestServer',
      'command',
      'waitFor',
    ]);
    expect(loaded.microservices).toEqual(['RedisStreamsClient', 'RedisStreamsContext', 'RedisStreamsServer', 'RedisStreamsTimeoutError']);
    expect(loaded.exports).not.toContain('RedisStreamsServer');
    expect(loaded.roundTrip).toBe(true);
    expect(loaded.exports).toEqual(
      expect.arrayContaining([
        'RedisPatternsModule',
        'RedisConnections',
        'RedisHealthIndicator',
        'RedisKeys',
        'RedisScript',
        'JsonCodec',
        'InjectRedis',
        'InvalidOptionError',
      ]),
    );
  }, 60_000);

  it('loads its main entry without the optional peers installed', () => {
    if (!existsSync(new URL('dist/index.js', root))) execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'pipe' });
    const optional = Object.keys(JSON.parse(readFileSync(new URL('package.json', root), 'utf8')).peerDependenciesMeta);
    // A resolve hook plays a machine where the optional peers are not installed.
    const hook = `
      const absent = new Set(${JSON.stringify(optional)});
      export async function resolve(specifier, context, next) {
        if (!absent.has(specifier)) return next(specifier, context);
        throw Object.assign(new Error('Cannot find package ' + specifier), { code: 'ERR_MODULE_NOT_FOUND' });
      }`;
    const script = `
      import { register } from 'node:module';
      register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));
      const peers = await Promise.all(${JSON.stringify(optional)}.map((name) => import(name).then(() => 'loaded', (error) => error.code)));
      const lib = await import('nestjs-redis-patterns');
      console.log(JSON.stringify({ peers, storage: typeof lib.RedisThrottlerStorage, module: typeof lib.RedisPatternsModule }));`;
    const loaded = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' }));
    expect(optional).toEqual(expect.arrayContaining(['@nestjs/throttler', 'prom-client', '@nestjs/microservices']));
    expect(loaded).toEqual({ peers: optional.map(() => 'ERR_MODULE_NOT_FOUND'), storage: 'function', module: 'function' });
  }, 60_000);

  it('packs the license, the build and the README, and nothing of the tests or the sample', () => {
    const [packed] = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' }),
    ) as [{ files: { path: string }[] }];
    const files = packed.files.map((file) => file.path);
    expect(files).toEqual(
      expect.arrayContaining(['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/cache/cache-miss.lua']),
    );
    expect(files.filter((file) => !file.startsWith('dist/') && !['LICENSE', 'README.md', 'package.json'].includes(file))).toEqual([]);
  }, 60_000);

  it("names its meter and tracer after the package's name and version", () => {
    const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
    expect([LIBRARY_NAME, LIBRARY_VERSION]).toEqual([pkg.name, pkg.version]);
  });
});
