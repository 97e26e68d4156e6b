import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../', import.meta.url);

describe('the published package', () => {
  it('builds to dist/ and loads by its name through the exports map, as ESM with types', () => {
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'pipe' });
    const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
    expect(pkg.type).toBe('module');
    expect(pkg.exports['.']).toMatchObject({ types: './dist/index.d.ts', import: './dist/index.js' });
    expect(existsSync(new URL('dist/index.d.ts', root))).toBe(true);
    expect(existsSync(new URL('dist/core/redis-patterns.module.d.ts', root))).toBe(true);

    const script = `
      Promise.all([import('nestjs-redis-patterns'), import('nestjs-redis-patterns/express-session')]).then(([lib, store]) => {
        const codec = new lib.JsonCodec();
        console.log(JSON.stringify({
          store: typeof store.RedisSessionStore,
          exports: Object.keys(lib).sort(),
          forRoot: typeof lib.RedisPatternsModule.forRoot,
          roundTrip: codec.decode(codec.encode(new Map([[1, 2n]]))) instanceof Map,
        }));
      });`;
    const loaded = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' }));
    expect(loaded.forRoot).toBe('function');
    expect(loaded.store).toBe('function');
    expect(loaded.roundTrip).toBe(true);
    expect(loaded.exports).toEqual(
      expect.arrayContaining(['RedisPatternsModule', 'RedisConnections', 'RedisHealthIndicator', 'RedisKeys', 'RedisScript', 'JsonCodec', 'InjectRedis', 'InvalidOptionError']),
    );
  }, 60_000);
});
