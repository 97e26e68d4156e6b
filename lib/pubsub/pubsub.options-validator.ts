import { InvalidOptionError } from '../core/errors.js';
import { knownRecord } from '../core/validation.js';
import type { PubSubOptions, ResolvedPubSubOptions } from './pubsub.options.js';

/** Checks the `pubsub` section and applies its defaults. */
export function resolvePubSubOptions(given: PubSubOptions | undefined): ResolvedPubSubOptions {
  const pubsub = knownRecord('pubsub', given, ['sharded']);
  const sharded = pubsub.sharded ?? 'auto';
  if (sharded !== 'auto' && typeof sharded !== 'boolean') throw new InvalidOptionError('pubsub.sharded', "'auto', true or false", sharded);
  return { sharded };
}
