import { hash } from 'node:crypto';

/**
 * The `hashes` bit positions of `item` in a bitmap of `bits` bits, by double hashing
 * (Kirsch-Mitzenmacher: position i = h1 + i * h2 mod bits) over two 32-bit words of its SHA-256.
 * Positions are computed here, so the scripts only set and read bits.
 */
export function bitPositions(item: string, bits: number, hashes: number): number[] {
  const digest = hash('sha256', item, 'buffer');
  const h1 = digest.readUInt32BE(0);
  // Odd, so the steps never collapse onto one position when bits is a power of two.
  const h2 = (digest.readUInt32BE(4) | 1) >>> 0;
  const positions = new Array<number>(hashes);
  for (let i = 0; i < hashes; i++) positions[i] = (h1 + i * h2) % bits;
  return positions;
}
