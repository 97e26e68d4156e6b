import { hash } from 'node:crypto';

/**
 * The `hashes` bit positions of `item` in a bitmap of `bits` bits, by double hashing
 * (Kirsch-Mitzenmacher: position i = h1 + i * h2 mod bits) over SHA-256: h1 from 48 bits of it
 * (so `h1 mod bits` stays even for bitmaps near 2^32 bits), and a step h2 from 1 to bits - 1
 * (never 0, which would put every hash on one bit). Every value stays below 2^53: exact in a double.
 */
export function bitPositions(item: string, bits: number, hashes: number): number[] {
  const digest = hash('sha256', item, 'buffer');
  const h1 = digest.readUIntBE(0, 6) % bits;
  const h2 = bits > 1 ? 1 + (digest.readUIntBE(6, 6) % (bits - 1)) : 0;
  const positions = new Array<number>(hashes);
  for (let i = 0; i < hashes; i++) positions[i] = (h1 + i * h2) % bits;
  return positions;
}
