import { Injectable, Logger, type OnApplicationBootstrap, type Type } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, ModuleRef } from '@nestjs/core';
import { InvalidOptionError, RedisPatternsError } from '../core/errors.js';
import { RedisKeys } from '../core/keys.js';
import { CountedMetric, RedisMetrics } from '../core/metrics.js';
import { OutageLog } from '../core/outage-log.js';
import { describeError } from '../core/store-failure.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { RedisScript } from '../core/redis-script.js';
import { toInstanceName } from '../core/validation.js';
import { BloomFilter, type BloomFilterStorage } from './bloom-filter.js';
import { BLOOM_GUARD } from './bloom.decorator.js';
import type { BloomFilterOptions } from './bloom.options.js';
import { resolveBloomOptions, type ResolvedBloomFilterOptions } from './bloom.options-validator.js';

const createScript = RedisScript.fromFile(new URL('./bloom-create.lua', import.meta.url));

/**
 * Bloom filters against cache penetration: RedisBloom's BF.* where the server has it (Redis 8,
 * Redis Stack, Valkey with valkey-bloom, Dragonfly), else a bitmap with the same guarantees that
 * runs on any Redis. See `BloomFilter`, `@BloomGuard` and the `bloom` option of the cache.
 *
 * @example
 * const products = this.blooms.filter('products', { capacity: 1_000_000, errorRate: 0.001 });
 * await products.add(id);
 * await products.mightContain(id); // false: certainly never added
 */
@Injectable()
export class BloomFilterService implements OnApplicationBootstrap {
  private readonly logger = new Logger('RedisPatterns:Bloom');
  private readonly outage = new OutageLog(
    this.logger,
    'Bloom filters',
    "calls reject with RedisUnavailableError (503), while @BloomGuard and the cache's bloom option let requests through",
  );
  private readonly redis: RedisClient;
  private readonly filters = new Map<string, { filter: BloomFilter; options: ResolvedBloomFilterOptions }>();
  private readonly checks: CountedMetric;
  private redisBloom?: Promise<boolean>;
  private bootstrapped = false;

  constructor(
    connections: RedisConnections,
    private readonly keys: RedisKeys,
    private readonly moduleRef: ModuleRef,
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    metrics: RedisMetrics,
  ) {
    this.redis = connections.get();
    this.checks = new CountedMetric(metrics, {
      name: 'bloom_checks_total',
      help: 'Items checked against a Bloom filter, by filter and result (maybe, absent: certainly never added)',
      labelNames: ['filter', 'result'],
    });
  }

  /**
   * The filter called `name`, sized for `capacity` items at `errorRate`. Opening the same name
   * again in this process returns the same filter, and needs the same options. The options are
   * stored with the filter in Redis; a later opening with other ones logs a warning and keeps the
   * stored ones (the filter was built with them).
   */
  filter(name: string, options: BloomFilterOptions): BloomFilter {
    toInstanceName(name, 'a filter');
    const resolved = resolveBloomOptions(options, `bloom filter "${name}"`);
    const known = this.filters.get(name);
    if (known) {
      const { capacity, errorRate, backend } = known.options;
      if (capacity !== resolved.capacity || errorRate !== resolved.errorRate || backend !== resolved.backend) {
        throw new InvalidOptionError(
          `bloom filter "${name}"`,
          `the options it was opened with in this process ({ capacity: ${capacity}, errorRate: ${errorRate}, backend: '${backend}' })`,
          options,
        );
      }
      return known.filter;
    }
    const filter = new BloomFilter(name, this.redis, () => this.open(name, resolved), resolved, {
      warn: (message) => this.logger.warn(message),
      outage: this.outage,
      checks: this.checks,
    });
    this.filters.set(name, { filter, options: resolved });
    if (this.bootstrapped) this.prefill(name, filter, resolved);
    return filter;
  }

  /** A filter opened before (declared in the module options, or made with `filter`). */
  get(name: string): BloomFilter {
    const known = this.filters.get(name);
    if (!known)
      throw new InvalidOptionError(
        'bloom',
        `a Bloom filter declared under bloomFilters in the module options, or made with BloomFilterService.filter (known: ${[...this.filters.keys()].join(', ') || 'none'})`,
        name,
      );
    return known.filter;
  }

  /** Whether the server has RedisBloom's BF.* commands (asked once). */
  private hasRedisBloom(): Promise<boolean> {
    this.redisBloom ??= (this.redis.call('COMMAND', 'INFO', 'BF.ADD') as Promise<unknown[]>).then(
      (reply) => Array.isArray(reply) && reply[0] !== null && reply[0] !== undefined,
      (error: unknown) => {
        this.redisBloom = undefined;
        throw error;
      },
    );
    return this.redisBloom;
  }

  /**
   * Checks that every `@BloomGuard` names a declared filter (startup fails otherwise), and starts
   * the prefill of the filters opened so far (the ones declared in the module options).
   */
  onApplicationBootstrap(): void {
    this.checkGuards();
    this.bootstrapped = true;
    for (const [name, { filter, options }] of this.filters) this.prefill(name, filter, options);
  }

  private checkGuards(): void {
    for (const controller of this.discovery.getControllers()) {
      const type = controller.metatype as (Type & { prototype: Record<string, unknown> }) | undefined;
      if (!type?.prototype) continue;
      const targets = [type, ...this.scanner.getAllMethodNames(type.prototype).map((method) => type.prototype[method] as object)];
      for (const target of targets) {
        const settings = Reflect.getMetadata(BLOOM_GUARD, target) as { filter: string } | undefined;
        if (settings && !this.filters.has(settings.filter)) {
          throw new InvalidOptionError(
            `@BloomGuard on ${type.name}`,
            `a filter declared under bloomFilters in the module options (known: ${[...this.filters.keys()].join(', ') || 'none'})`,
            settings.filter,
          );
        }
      }
    }
  }

  /** Fills, in the background, a filter with a `prefill` that has never been built. */
  private prefill(name: string, filter: BloomFilter, options: ResolvedBloomFilterOptions): void {
    const prefill = options.prefill;
    if (!prefill) return;
    const build = async () => {
      // Built already, or being built by another instance (which holds the rebuild's lease).
      const { built, rebuilding } = await filter.status();
      if (built || rebuilding) return;
      if (await filter.rebuild(prefill(this.moduleRef))) this.logger.log(`Bloom filter "${name}" is built`);
    };
    filter.trackBuild(
      build().catch((error: unknown) => {
        this.logger.warn(
          `Bloom filter "${name}" could not be prefilled (${describeError(error)}); it lets everything through until rebuilt`,
        );
      }),
    );
  }

  /** Settles the filter's backend and parameters with Redis: creates it, or reads what is stored. */
  private async open(name: string, options: ResolvedBloomFilterOptions): Promise<BloomFilterStorage> {
    const hasBloom = options.backend === 'bitmap' ? false : await this.hasRedisBloom();
    if (options.backend === 'redisbloom' && !hasBloom)
      throw new RedisPatternsError(`Bloom filter "${name}" asks for backend 'redisbloom', but the server has no BF.* commands`);
    const backend = hasBloom ? 'redisbloom' : 'bitmap';
    const keys: BloomFilterStorage['keys'] = [
      this.keys.tagged(['bf', name], 'meta'),
      this.keys.tagged(['bf', name], 'a'),
      this.keys.tagged(['bf', name], 'b'),
    ];
    const { bits, hashes, capacity, errorRate } = options;
    const stored = await createScript.run<(string | null)[] | null>(this.redis, keys, [
      backend,
      bits,
      hashes,
      capacity,
      errorRate,
      options.startsEmpty ? '1' : '0',
    ]);
    if (!stored) return { keys, backend, bits, hashes, capacity, errorRate };
    const [storedBackend, storedBits, storedHashes, storedCapacity, storedErrorRate] = stored;
    const kept: BloomFilterStorage = {
      keys,
      backend: storedBackend as BloomFilterStorage['backend'],
      bits: Number(storedBits),
      hashes: Number(storedHashes),
      capacity: Number(storedCapacity),
      errorRate: Number(storedErrorRate),
    };
    if (kept.capacity !== capacity || kept.errorRate !== errorRate || (options.backend !== 'auto' && kept.backend !== options.backend)) {
      this.logger.warn(
        `Bloom filter "${name}" exists with { capacity: ${kept.capacity}, errorRate: ${kept.errorRate}, backend: '${kept.backend}' }, not the options given ({ capacity: ${capacity}, errorRate: ${errorRate}, backend: '${options.backend}' }); it keeps the stored ones. Use a new name to resize it.`,
      );
    }
    return kept;
  }
}
