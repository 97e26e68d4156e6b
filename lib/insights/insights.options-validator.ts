import type { ResolvedCoreOptions } from '../core/core.options.js';
import { toTimerMilliseconds, type Duration } from '../core/duration.js';
import { InvalidOptionError } from '../core/errors.js';
import { knownRecord, toBoolean } from '../core/validation.js';
import type { InsightsOptions } from './insights.options.js';

/** The `insights` section after validation. */
export interface ResolvedInsightsOptions {
  /** How often the gauges are refreshed, or undefined when they are not. */
  intervalMs: number | undefined;
  connections: readonly string[];
  health: boolean;
}

/** The shortest refresh interval: a bare `15` is 15 milliseconds, surely not what was meant. */
const MIN_INTERVAL_MS = 1_000;

/** Validates `insights` of the module options, once, at startup. */
export function resolveInsightsOptions(given: InsightsOptions | undefined, core: ResolvedCoreOptions): ResolvedInsightsOptions {
  const options = knownRecord('insights', given, ['interval', 'connections', 'health']) as InsightsOptions;
  const known = [...core.connections.keys()];
  return {
    intervalMs: resolveInterval(options.interval ?? false),
    connections: options.connections === undefined ? known : resolveConnections(options.connections, known),
    health: toBoolean('insights.health', options.health ?? true),
  };
}

function resolveInterval(interval: Duration | false): number | undefined {
  if (interval === false) return undefined;
  const ms = toTimerMilliseconds(interval, 'insights.interval');
  if (ms < MIN_INTERVAL_MS)
    throw new InvalidOptionError('insights.interval', "false, or a duration of at least 1s, such as '15s'", interval);
  return ms;
}

function resolveConnections(connections: unknown, known: readonly string[]): string[] {
  const expected = `an array of the module's connection names (${known.join(', ')})`;
  if (!Array.isArray(connections) || connections.length === 0) throw new InvalidOptionError('insights.connections', expected, connections);
  connections.forEach((name: unknown, index) => {
    if (typeof name !== 'string' || !known.includes(name)) throw new InvalidOptionError(`insights.connections[${index}]`, expected, name);
  });
  return [...new Set(connections as string[])];
}
