import { CORE_OPTION_NAMES } from '../core/core.options-validator.js';
import { InvalidOptionError } from '../core/errors.js';
import { isRecord, knownRecord } from '../core/validation.js';
import { FEATURES } from './features.js';

/** Every option name the module knows: the core's, and each feature's section. */
const OPTION_NAMES: readonly string[] = [
  ...CORE_OPTION_NAMES,
  ...FEATURES.flatMap((feature) => (feature.section ? [feature.section.name] : [])),
];

/**
 * Checks that the module options are an object holding only options the module knows (a typo
 * fails startup, naming it); the core and each section check their own values.
 */
export function checkOptionNames(options: unknown): Record<string, unknown> {
  if (!isRecord(options)) throw new InvalidOptionError('options', 'an object', options);
  return knownRecord('', options, OPTION_NAMES);
}
