import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** The system's Chromium: CHROMIUM_PATH, else `chromium` or `chromium-browser` on PATH (Debian installs /usr/bin/chromium). */
export function chromiumPath(): string {
  const candidates = [
    process.env.CHROMIUM_PATH,
    ...['chromium', 'chromium-browser'].flatMap((name) => (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, name))),
    '/usr/bin/chromium',
  ];
  for (const candidate of candidates) {
    if (!candidate) continue;
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not this one
    }
  }
  throw new Error(
    'Chromium was not found (CHROMIUM_PATH, `chromium` or `chromium-browser` on PATH, /usr/bin/chromium). The browser tests drive ' +
      "the system's Chromium with playwright-core, which downloads none: install it with `apt-get install -y chromium` " +
      '(Debian/Ubuntu; .ci/run does), or set CHROMIUM_PATH to a Chromium or Chrome binary.',
  );
}

/** Headless Chromium; `--no-sandbox` because CI runs as root. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox'] });
}

/** Width, height and byte size of a PNG, read from its IHDR chunk; throws when `png` is not a PNG. */
export function pngSize(png: Buffer): { width: number; height: number; bytes: number } {
  if (
    !png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) ||
    png.toString('latin1', 12, 16) !== 'IHDR'
  )
    throw new Error('not a PNG');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20), bytes: png.length };
}
