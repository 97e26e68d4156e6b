import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import calculateSlot from 'cluster-key-slot';
import { isCluster, type RedisClient } from './redis-client.js';
import { CrossSlotError } from './errors.js';

/** A value passed to a script as ARGV. */
export type ScriptArgument = string | number | Buffer;

/**
 * A Lua script from a feature's folder, run with EVALSHA. When the server does not know the
 * script (after SCRIPT FLUSH, a restart or a failover, on any cluster node), the same call is
 * re-sent once with EVAL, which also loads it again.
 *
 * Keys and arguments always travel as KEYS/ARGV; nothing the caller passes becomes Lua source.
 *
 * @example
 * const slidingWindow = RedisScript.fromFile(new URL('./sliding-window.lua', import.meta.url));
 * const [allowed, remaining] = await slidingWindow.run<[number, number]>(redis, [key], [limit, windowMs]);
 */
export class RedisScript {
  /** The name of every script made in this process, by SHA1 (the same source has the same name). */
  private static readonly names = new Map<string, string>();
  readonly sha1: string;

  constructor(
    readonly name: string,
    readonly source: string,
  ) {
    this.sha1 = createHash('sha1').update(source).digest('hex');
    RedisScript.names.set(this.sha1, name);
  }

  /**
   * The name of the script with this SHA1 (as EVALSHA names it), if one was made in this process.
   * @example
   * RedisScript.nameOf(slowEntrySha1); // 'cache-miss'
   */
  static nameOf(sha1: string): string | undefined {
    return RedisScript.names.get(sha1.toLowerCase());
  }

  /**
   * Loads a `.lua` file, usually `new URL('./name.lua', import.meta.url)`, after the `preludes`
   * (files of local functions that several scripts share), in the order given.
   * @example
   * const read = RedisScript.fromFile(new URL('./session-read.lua', import.meta.url), new URL('./session-meta.lua', import.meta.url));
   */
  static fromFile(url: URL, ...preludes: URL[]): RedisScript {
    const path = fileURLToPath(url);
    const source = [...preludes, url].map((file) => readFileSync(fileURLToPath(file), 'utf8')).join('\n');
    return new RedisScript(basename(path, '.lua'), source);
  }

  /**
   * Runs the script; with `buffers`, bulk replies come back as Buffers (for binary values). On a Cluster, keys that hash to different slots are rejected before anything
   * is sent, with a {@link CrossSlotError} that names them.
   */
  async run<T = unknown>(
    client: RedisClient,
    keys: readonly string[],
    args: readonly ScriptArgument[] = [],
    { buffers = false } = {},
  ): Promise<T> {
    if (isCluster(client)) this.assertOneSlot(keys);
    // One array, not spread arguments: a batch may pass more values than a function call takes.
    const values = [this.sha1, keys.length, ...keys, ...args];
    try {
      return (await (buffers ? client.callBuffer('EVALSHA', values) : client.call('EVALSHA', values))) as T;
    } catch (error) {
      if (!isNoScript(error)) throw error;
      values[0] = this.source;
      return (await (buffers ? client.callBuffer('EVAL', values) : client.call('EVAL', values))) as T;
    }
  }

  private assertOneSlot(keys: readonly string[]): void {
    if (keys.length < 2) return;
    const slot = calculateSlot(keys[0]);
    if (keys.some((key) => calculateSlot(key) !== slot)) throw new CrossSlotError(this.name, keys);
  }
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}
