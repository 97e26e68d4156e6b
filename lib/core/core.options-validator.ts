import { toTimerMilliseconds } from './duration.js';
import { InvalidOptionError, ValueDescription } from './errors.js';
import { isRecord, knownRecord, toBoolean, toNonEmptyString } from './validation.js';
import {
  DEFAULT_CONNECTION,
  DEFAULT_CORE_OPTIONS,
  type CoreModuleOptions,
  type ReconnectOptions,
  type RedisConnectionOptions,
  type ResolvedCoreOptions,
} from './core.options.js';

/** The names of the core options; each feature's section comes beside them. */
export const CORE_OPTION_NAMES = [
  'connection',
  'connections',
  'keyPrefix',
  'commandTimeout',
  'connectTimeout',
  'offlineQueue',
  'autoPipelining',
  'reconnect',
  'shutdownTimeout',
  'codec',
  'checkMaxmemoryPolicy',
] as const satisfies readonly (keyof CoreModuleOptions)[];

const HOST_OPTION_NAMES = ['host', 'port', 'username', 'password', 'db', 'tls', 'options'];
const CONNECTION_FORMS = ['url', 'cluster', 'sentinel', 'client'] as const;
const FORM_DESCRIPTIONS: Readonly<Record<(typeof CONNECTION_FORMS)[number], string>> = {
  url: 'a redis:// or rediss:// URL',
  cluster: 'cluster options ({ nodes })',
  sentinel: 'sentinel options ({ sentinels, name })',
  client: 'an ioredis Redis or Cluster instance',
};
const FORBIDDEN_IN_PREFIX = /[{}*?[\]\\]/;

/**
 * Checks the core options once, at startup, and applies the defaults. The module checks first that
 * `options` is an object without unknown options (core or a feature's section).
 *
 * @throws InvalidOptionError naming the first invalid option and what it accepts.
 */
export function resolveCoreOptions(options: CoreModuleOptions): ResolvedCoreOptions {
  const connections = new Map<string, RedisConnectionOptions>();
  connections.set(DEFAULT_CONNECTION, validateConnection('connection', options.connection));
  if (options.connections !== undefined && !isRecord(options.connections))
    throw new InvalidOptionError('connections', 'an object of named connections', options.connections);
  for (const [name, connection] of Object.entries(options.connections ?? {})) {
    if (name === DEFAULT_CONNECTION)
      throw new InvalidOptionError('connections.default', `a name other than "${DEFAULT_CONNECTION}", which is the main connection`, name);
    connections.set(name, validateConnection(`connections.${name}`, connection));
  }

  const reconnect: ReconnectOptions = knownRecord('reconnect', options.reconnect, ['minDelay', 'maxDelay']);
  const minDelayMs = toTimerMilliseconds(reconnect.minDelay ?? DEFAULT_CORE_OPTIONS.reconnect.minDelay, 'reconnect.minDelay');
  const maxDelayMs = toTimerMilliseconds(reconnect.maxDelay ?? DEFAULT_CORE_OPTIONS.reconnect.maxDelay, 'reconnect.maxDelay');
  if (maxDelayMs < minDelayMs)
    throw new InvalidOptionError('reconnect.maxDelay', `a duration of at least reconnect.minDelay (${minDelayMs}ms)`, reconnect.maxDelay);

  return {
    connections,
    keyPrefix: validateKeyPrefix(options.keyPrefix ?? DEFAULT_CORE_OPTIONS.keyPrefix),
    commandTimeoutMs: toTimerMilliseconds(options.commandTimeout ?? DEFAULT_CORE_OPTIONS.commandTimeout, 'commandTimeout'),
    connectTimeoutMs: toTimerMilliseconds(options.connectTimeout ?? DEFAULT_CORE_OPTIONS.connectTimeout, 'connectTimeout'),
    offlineQueue: toBoolean('offlineQueue', options.offlineQueue ?? DEFAULT_CORE_OPTIONS.offlineQueue),
    autoPipelining: toBoolean('autoPipelining', options.autoPipelining ?? DEFAULT_CORE_OPTIONS.autoPipelining),
    reconnect: { minDelayMs, maxDelayMs },
    shutdownTimeoutMs: toTimerMilliseconds(options.shutdownTimeout ?? DEFAULT_CORE_OPTIONS.shutdownTimeout, 'shutdownTimeout', {
      allowZero: true,
    }),
    codec: validateCodec(options.codec ?? DEFAULT_CORE_OPTIONS.codec()),
    checkMaxmemoryPolicy: toBoolean('checkMaxmemoryPolicy', options.checkMaxmemoryPolicy ?? DEFAULT_CORE_OPTIONS.checkMaxmemoryPolicy),
  };
}

function validateConnection(path: string, connection: unknown): RedisConnectionOptions {
  if (!isRecord(connection)) {
    throw new InvalidOptionError(path, 'an object with one of url, host/port, cluster, sentinel or client', connection);
  }
  const forms = CONNECTION_FORMS.filter((form) => connection[form] !== undefined);
  // `{ url: process.env.REDIS_URL }` with the variable unset: the url is missing, not unknown.
  const unset = CONNECTION_FORMS.find((form) => form in connection && connection[form] === undefined);
  if (forms.length === 0 && unset !== undefined) {
    throw new InvalidOptionError(
      `${path}.${unset}`,
      `${FORM_DESCRIPTIONS[unset]} (it is given but undefined: is the environment variable it comes from set?)`,
      undefined,
    );
  }
  if (forms.length > 1) throw new InvalidOptionError(path, `only one of ${CONNECTION_FORMS.join(', ')}`, `${forms.join(' and ')} together`);
  switch (forms[0]) {
    case 'url':
      knownRecord(path, connection, ['url', 'options']);
      validateUrl(`${path}.url`, connection.url);
      break;
    case 'cluster':
      knownRecord(path, connection, ['cluster']);
      validateCluster(`${path}.cluster`, connection.cluster);
      break;
    case 'sentinel':
      knownRecord(path, connection, ['sentinel']);
      validateSentinel(`${path}.sentinel`, connection.sentinel);
      break;
    case 'client':
      knownRecord(path, connection, ['client']);
      if (!isIoredisClient(connection.client))
        throw new InvalidOptionError(`${path}.client`, 'an ioredis Redis or Cluster instance', connection.client);
      break;
    default:
      knownRecord(path, connection, HOST_OPTION_NAMES);
      validateServer(path, connection);
  }
  return connection as RedisConnectionOptions;
}

function validateUrl(path: string, url: unknown): void {
  let protocol: string | undefined;
  try {
    protocol = typeof url === 'string' ? new URL(url).protocol : undefined;
  } catch {
    protocol = undefined;
  }
  if (protocol !== 'redis:' && protocol !== 'rediss:') throw new InvalidOptionError(path, 'a redis:// or rediss:// URL', url);
}

function validateServer(path: string, server: Record<string, unknown>): void {
  if (server.host !== undefined) toNonEmptyString(`${path}.host`, server.host);
  if (server.port !== undefined) validatePort(`${path}.port`, server.port);
  if (server.db !== undefined && !(Number.isInteger(server.db) && (server.db as number) >= 0)) {
    throw new InvalidOptionError(`${path}.db`, 'an integer of 0 or more', server.db);
  }
  for (const credential of ['username', 'password', 'sentinelUsername', 'sentinelPassword']) {
    if (server[credential] !== undefined && typeof server[credential] !== 'string')
      throw new InvalidOptionError(`${path}.${credential}`, 'a string', new ValueDescription(`a ${typeof server[credential]}`));
  }
  if (server.tls !== undefined && server.tls !== true && !isRecord(server.tls))
    throw new InvalidOptionError(`${path}.tls`, 'true or an object of tls.connect options', server.tls);
  if (server.options !== undefined && !isRecord(server.options))
    throw new InvalidOptionError(`${path}.options`, 'an object of ioredis options', server.options);
}

function validateCluster(path: string, cluster: unknown): void {
  if (!isRecord(cluster)) throw new InvalidOptionError(path, 'an object with nodes', cluster);
  knownRecord(path, cluster, ['nodes', 'options']);
  if (!Array.isArray(cluster.nodes) || cluster.nodes.length === 0)
    throw new InvalidOptionError(`${path}.nodes`, 'a non-empty array of "host:port" strings or { host, port }', cluster.nodes);
  cluster.nodes.forEach((node, index) => validateAddress(`${path}.nodes[${index}]`, node));
  if (cluster.options !== undefined && !isRecord(cluster.options))
    throw new InvalidOptionError(`${path}.options`, 'an object of ioredis Cluster options', cluster.options);
}

function validateSentinel(path: string, sentinel: unknown): void {
  if (!isRecord(sentinel)) throw new InvalidOptionError(path, 'an object with sentinels and name', sentinel);
  knownRecord(path, sentinel, [
    'sentinels',
    'name',
    'role',
    'sentinelUsername',
    'sentinelPassword',
    'username',
    'password',
    'db',
    'tls',
    'sentinelTls',
    'options',
  ]);
  if (!Array.isArray(sentinel.sentinels) || sentinel.sentinels.length === 0)
    throw new InvalidOptionError(`${path}.sentinels`, 'a non-empty array of "host:port" strings or { host, port }', sentinel.sentinels);
  sentinel.sentinels.forEach((node, index) => validateAddress(`${path}.sentinels[${index}]`, node));
  toNonEmptyString(`${path}.name`, sentinel.name);
  if (sentinel.role !== undefined && sentinel.role !== 'master' && sentinel.role !== 'slave')
    throw new InvalidOptionError(`${path}.role`, "'master' or 'slave'", sentinel.role);
  validateServer(path, { ...sentinel, host: undefined, port: undefined });
  if (sentinel.sentinelTls !== undefined && sentinel.sentinelTls !== true && !isRecord(sentinel.sentinelTls)) {
    throw new InvalidOptionError(`${path}.sentinelTls`, 'true or an object of tls.connect options', sentinel.sentinelTls);
  }
}

function validateAddress(path: string, address: unknown): void {
  if (typeof address === 'string') {
    const match = /^(.+):(\d+)$/.exec(address);
    if (!match) throw new InvalidOptionError(path, 'a "host:port" string', address);
    validatePort(path, Number(match[2]));
    return;
  }
  if (!isRecord(address)) throw new InvalidOptionError(path, 'a "host:port" string or { host, port }', address);
  toNonEmptyString(`${path}.host`, address.host);
  validatePort(`${path}.port`, address.port);
}

function validatePort(path: string, port: unknown): void {
  if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65_535)
    throw new InvalidOptionError(path, 'a port number from 1 to 65535', port);
}

function validateKeyPrefix(prefix: unknown): string {
  if (typeof prefix !== 'string' || prefix.length > 128 || FORBIDDEN_IN_PREFIX.test(prefix)) {
    throw new InvalidOptionError('keyPrefix', 'a string of at most 128 characters without {, }, *, ?, [, ] or \\', prefix);
  }
  return prefix;
}

function validateCodec(codec: unknown): ResolvedCoreOptions['codec'] {
  if (!isRecord(codec) || typeof codec.encode !== 'function' || typeof codec.decode !== 'function') {
    throw new InvalidOptionError('codec', 'an object with encode(value) and decode(raw) methods', codec);
  }
  return codec as unknown as ResolvedCoreOptions['codec'];
}

/** Duck-typed, so a client made by another copy of ioredis is accepted too. */
function isIoredisClient(value: unknown): boolean {
  return isRecord(value) && typeof value.sendCommand === 'function' && typeof value.isCluster === 'boolean';
}
