import { toTimerMilliseconds, type Duration } from '../core/duration.js';
import { InvalidOptionError } from '../core/errors.js';
import { knownRecord, toBoolean, toPositiveInteger } from '../core/validation.js';
import type { IdempotencyOptions, IdempotencyRequest, IdempotentOptions } from './idempotency.options.js';

/** The settings that `@Idempotent()` and `IdempotencyService.run` may set per route or call. */
export interface ResolvedIdempotentSettings {
  ttlMs: number;
  leaseMs: number;
  required: boolean;
  storeClientErrors: boolean;
  onStoreError: 'open' | 'closed';
}

/** The idempotency options after validation: durations in milliseconds, header names in lower case. */
export interface ResolvedIdempotencyOptions extends ResolvedIdempotentSettings {
  /** Whether the module options have an `idempotency` section. */
  configured: boolean;
  /** The request header, in lower case (as Node.js gives request headers). */
  header: string;
  /** The request header, as configured (for messages). */
  headerName: string;
  maxKeyLength: number;
  /** In lower case. */
  replayHeaders: ReadonlySet<string>;
  replayedHeader: string | false;
  retryAfterSeconds: number;
  maxResponseBytes: number;
  user(request: IdempotencyRequest): unknown;
}

/** Every default of idempotency keys, in one place. */
export const DEFAULT_IDEMPOTENCY_OPTIONS = {
  ttl: '24h',
  lease: '30s',
  header: 'Idempotency-Key',
  required: false,
  maxKeyLength: 255,
  replayHeaders: [
    'content-type',
    'content-language',
    'content-disposition',
    'content-location',
    'location',
    'etag',
    'last-modified',
    'cache-control',
    'link',
  ],
  replayedHeader: 'Idempotent-Replayed',
  storeClientErrors: true,
  retryAfter: '1s',
  maxResponseBytes: 1_048_576,
  user: (request: IdempotencyRequest): unknown => request.user?.id ?? request.user?.sub ?? request.user?.userId,
  onStoreError: 'closed',
} as const;

const OPTION_NAMES = Object.keys(DEFAULT_IDEMPOTENCY_OPTIONS);
const ROUTE_OPTION_NAMES = ['ttl', 'lease', 'required', 'storeClientErrors', 'onStoreError'];
const RUN_OPTION_NAMES = ['ttl', 'lease', 'onStoreError', 'scope'];

/** Headers that frame a message: a replay sets its own, so they are never stored. */
const FRAMING_HEADERS = new Set([
  'content-length',
  'transfer-encoding',
  'content-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'trailer',
  'te',
]);

/** An HTTP field name (RFC 9110 `token`). */
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Validates `idempotency` of the module options, once, at startup. */
export function resolveIdempotencyOptions(configured: IdempotencyOptions | undefined): ResolvedIdempotencyOptions {
  const options = knownRecord('idempotency', configured, OPTION_NAMES) as IdempotencyOptions;
  const defaults = DEFAULT_IDEMPOTENCY_OPTIONS;
  const headerName = toFieldName('idempotency.header', options.header ?? defaults.header);
  const replayedHeader = options.replayedHeader ?? defaults.replayedHeader;
  if (replayedHeader !== false) toFieldName('idempotency.replayedHeader', replayedHeader);
  const user = options.user ?? defaults.user;
  if (typeof user !== 'function') throw new InvalidOptionError('idempotency.user', 'a function of the request', user);
  const maxResponseBytes = options.maxResponseBytes ?? defaults.maxResponseBytes;
  toPositiveInteger('idempotency.maxResponseBytes', maxResponseBytes);
  return {
    configured: configured !== undefined,
    ...resolveSettings(options, 'idempotency', defaultSettings()),
    header: headerName.toLowerCase(),
    headerName,
    maxKeyLength: toPositiveInteger('idempotency.maxKeyLength', options.maxKeyLength ?? defaults.maxKeyLength),
    replayHeaders: toReplayHeaders(options.replayHeaders ?? defaults.replayHeaders, replayedHeader),
    replayedHeader,
    retryAfterSeconds: Math.ceil(toTimerMilliseconds(options.retryAfter ?? defaults.retryAfter, 'idempotency.retryAfter') / 1000),
    maxResponseBytes,
    user,
  };
}

/** Validates the options of one `@Idempotent()`; `where` names it in errors. Only the ones given are returned. */
export function checkIdempotentOptions(options: IdempotentOptions, where: string): IdempotentOptions {
  knownRecord(where, options, ROUTE_OPTION_NAMES);
  resolveSettings(options, where, defaultSettings());
  return options;
}

/** Validates the options of one `IdempotencyService` call, over the module's. */
export function resolveRunOptions(
  options: IdempotentOptions & { scope?: unknown },
  module: ResolvedIdempotentSettings,
): ResolvedIdempotentSettings {
  knownRecord('options', options, RUN_OPTION_NAMES);
  return resolveSettings(options, 'options', module);
}

/** The settings of one route or call: the given options over `base`. */
export function resolveSettings(options: IdempotentOptions, where: string, base: ResolvedIdempotentSettings): ResolvedIdempotentSettings {
  const option = (name: string) => `${where}.${name}`;
  const onStoreError = options.onStoreError ?? base.onStoreError;
  if (onStoreError !== 'open' && onStoreError !== 'closed')
    throw new InvalidOptionError(option('onStoreError'), "'open' or 'closed'", onStoreError);
  return {
    ttlMs: toDuration(options.ttl, option('ttl'), base.ttlMs),
    leaseMs: toDuration(options.lease, option('lease'), base.leaseMs),
    required: options.required === undefined ? base.required : toBoolean(option('required'), options.required),
    storeClientErrors:
      options.storeClientErrors === undefined ? base.storeClientErrors : toBoolean(option('storeClientErrors'), options.storeClientErrors),
    onStoreError,
  };
}

function defaultSettings(): ResolvedIdempotentSettings {
  const defaults = DEFAULT_IDEMPOTENCY_OPTIONS;
  return {
    ttlMs: toTimerMilliseconds(defaults.ttl, 'idempotency.ttl'),
    leaseMs: toTimerMilliseconds(defaults.lease, 'idempotency.lease'),
    required: defaults.required,
    storeClientErrors: defaults.storeClientErrors,
    onStoreError: defaults.onStoreError,
  };
}

function toDuration(value: Duration | undefined, option: string, fallback: number): number {
  return value === undefined ? fallback : toTimerMilliseconds(value, option);
}

function toFieldName(option: string, value: unknown): string {
  if (typeof value !== 'string' || !FIELD_NAME.test(value))
    throw new InvalidOptionError(option, 'an HTTP header name, such as "Idempotency-Key"', value);
  return value;
}

function toReplayHeaders(value: unknown, replayedHeader: string | false): ReadonlySet<string> {
  if (!Array.isArray(value)) throw new InvalidOptionError('idempotency.replayHeaders', 'an array of header names', value);
  return new Set(
    value.map((name: unknown, index) => {
      const option = `idempotency.replayHeaders[${index}]`;
      const lower = toFieldName(option, name).toLowerCase();
      if (FRAMING_HEADERS.has(lower))
        throw new InvalidOptionError(option, `a header that does not frame the message (not ${[...FRAMING_HEADERS].join(', ')})`, name);
      if (replayedHeader !== false && lower === replayedHeader.toLowerCase())
        throw new InvalidOptionError(option, 'another header than the replayedHeader, which replays set themselves', name);
      return lower;
    }),
  );
}
