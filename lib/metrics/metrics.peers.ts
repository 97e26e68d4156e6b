import { InvalidOptionError, ValueDescription } from '../core/errors.js';

/**
 * Loads an optional peer of the library (`() => import('prom-client')`), or throws an
 * InvalidOptionError naming `option`, the one that asked for it, and saying what to install.
 */
export async function loadPeer<T>(option: string, name: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch {
    throw new InvalidOptionError(
      option,
      `${name} installed beside this library (npm install ${name}), or the option left out`,
      new ValueDescription(`set, but ${name} could not be loaded`),
    );
  }
}
