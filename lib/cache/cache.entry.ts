/**
 * What a cache entry holds in Redis: when it stops being fresh, then the encoded value, as
 * `<freshUntilMs>|<encoded>` (`Infinity|<encoded>` for an entry that never goes stale). Past
 * `freshUntil` the entry is stale; Redis drops it once the stale-while-revalidate window is over too.
 */
export interface StoredEntry {
  freshUntil: number;
  encoded: string | Buffer;
}

const SEPARATOR = 0x7c; // '|'

export function packEntry(freshUntil: number, encoded: string | Buffer): string | Buffer {
  return typeof encoded === 'string' ? `${freshUntil}|${encoded}` : Buffer.concat([Buffer.from(`${freshUntil}|`), encoded]);
}

/** Reads an entry; undefined when the value was not written by this library. */
export function unpackEntry(raw: string | Buffer): StoredEntry | undefined {
  if (typeof raw === 'string') {
    const separator = raw.indexOf('|');
    const freshUntil = Number(raw.slice(0, separator));
    return separator > 0 && isFreshUntil(freshUntil) ? { freshUntil, encoded: raw.slice(separator + 1) } : undefined;
  }
  const separator = raw.indexOf(SEPARATOR);
  const freshUntil = Number(raw.subarray(0, separator).toString());
  return separator > 0 && isFreshUntil(freshUntil) ? { freshUntil, encoded: raw.subarray(separator + 1) } : undefined;
}

function isFreshUntil(time: number): boolean {
  return Number.isFinite(time) || time === Infinity;
}
