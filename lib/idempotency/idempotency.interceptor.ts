import { createHash } from 'node:crypto';
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import {
  Inject,
  Injectable,
  Logger,
  StreamableFile,
  type CallHandler,
  type ExecutionContext,
  type NestInterceptor,
  type Type,
} from '@nestjs/common';
import { RESPONSE_PASSTHROUGH_METADATA, ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js';
import { Reflector } from '@nestjs/core';
import { finalize, of, type Observable } from 'rxjs';
import { RedisPatternsError } from '../core/errors.js';
import { ResponseCapture, type WrittenResponse } from './idempotency.capture.js';
import type { IdempotencyClaim, IdempotencyRecord, StoredHeader } from './idempotency.claim.js';
import { IdempotencyConflictError, IdempotencyKeyMissingError } from './idempotency.errors.js';
import { parseIdempotencyKey } from './idempotency.key.js';
import { IDEMPOTENCY_OPTIONS, IDEMPOTENT_ROUTE, type IdempotencyRequest, type IdempotentOptions } from './idempotency.options.js';
import { resolveSettings, type ResolvedIdempotencyOptions, type ResolvedIdempotentSettings } from './idempotency.options-validator.js';
import { IdempotencyService } from './idempotency.service.js';

/** The methods whose requests carry idempotency keys: the ones that are not idempotent by themselves. */
const METHODS = new Set(['POST', 'PUT', 'PATCH']);

/** Nest's `RouteParamtypes` of `@Res()` and `@Next()`: a route that takes either sends its response itself. */
const RESPONSE_PARAMTYPES = new Set(['1', '2']);

/** A route's settings: the options in effect, and whether the handler sends its response itself (`@Res()` without `passthrough`). */
interface RouteSettings extends ResolvedIdempotentSettings {
  sendsOwnResponse: boolean;
}

/** A response of Express or Fastify, as far as replays need it. */
interface HttpResponse {
  raw?: ServerResponse;
  status(code: number): unknown;
  getHeaders(): OutgoingHttpHeaders;
  setHeader?(name: string, value: string | readonly string[]): unknown;
  header?(name: string, value: string | readonly string[]): unknown;
  send?(body: Buffer): unknown;
}

/**
 * Makes POST, PUT and PATCH handlers idempotent with the `Idempotency-Key` header (the IETF
 * httpapi draft); applied by `@Idempotent()`, on Express and Fastify. A request with a key runs
 * once: its response (status, the `replayHeaders`, the body's bytes as sent) is stored for `ttl`
 * and replayed to repeats, marked `Idempotent-Replayed: true`. A repeat while the first still runs
 * gets 409 with `Retry-After`; the key with another method, path, body or user gets 422. 5xx
 * responses and errors free the key (a retry runs again); 4xx ones are stored unless
 * `storeClientErrors: false`. Other methods and other contexts (rpc, ws) pass through.
 *
 * The `protected` hooks (`userOf`, `fingerprintOf`) can be overridden in a subclass, applied with
 * `@UseInterceptors(MyIdempotencyInterceptor)` in place of `@Idempotent()` (the route then has the
 * module's options).
 *
 * @example
 * @Injectable()
 * export class TenantIdempotency extends IdempotencyInterceptor {
 *   protected override userOf(request: IdempotencyRequest) { return String(request.headers['x-tenant']); }
 * }
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  private readonly logger = new Logger('RedisPatterns:Idempotency');
  /** Each handler's settings, per controller (a handler may be inherited by several). */
  private readonly routes = new WeakMap<Type, WeakMap<object, RouteSettings>>();

  constructor(
    protected readonly idempotency: IdempotencyService,
    protected readonly reflector: Reflector,
    @Inject(IDEMPOTENCY_OPTIONS) protected readonly settings: ResolvedIdempotencyOptions,
  ) {}

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    if (context.getType() !== 'http') return next.handle();
    const request = context.getArgByIndex<IdempotencyRequest>(0);
    if (!METHODS.has(request.method ?? '') || alreadyIntercepted(request)) return next.handle();
    const route = this.routeSettings(context);
    const { header, headerName } = this.settings;
    const key = parseIdempotencyKey(request.headers[header], headerName, this.settings.maxKeyLength);
    if (key === undefined) {
      if (route.required) throw new IdempotencyKeyMissingError(headerName);
      return next.handle();
    }
    const user = this.userOf(request);
    const response = context.getArgByIndex<HttpResponse>(1);
    let begun;
    try {
      begun = await this.idempotency.claimKey(key, this.fingerprintOf(request, user), user, route);
    } catch (error) {
      if (error instanceof IdempotencyConflictError) setHeader(response, 'Retry-After', String(this.settings.retryAfterSeconds));
      throw error;
    }
    if (begun.outcome === 'replay') return of(this.replay(response, begun.record, route.sendsOwnResponse));
    if (begun.outcome === 'unchecked') return next.handle();
    return this.runHolding(begun.claim, response, route, next);
  }

  /**
   * Who the request is from (keys are scoped per user): the module's `user` option, as a string;
   * undefined for an anonymous request.
   */
  protected userOf(request: IdempotencyRequest): string | undefined {
    const user = this.settings.user(request);
    if (user === undefined || user === null) return undefined;
    if ((typeof user === 'string' && user !== '') || typeof user === 'number' || typeof user === 'bigint') return String(user);
    throw new RedisPatternsError(
      `The idempotency \`user\` option returned ${typeof user === 'string' ? 'an empty string' : typeof user}: expected a string, a number, or undefined for no user`,
    );
  }

  /** What makes two requests the same: the method, the URL (with its query), the user and the body, as a hex SHA-256. */
  protected fingerprintOf(request: IdempotencyRequest, user: string | undefined): string {
    const hash = createHash('sha256').update(`${request.method}\n${request.originalUrl ?? request.url}\n${user ?? ''}\n`);
    const { body } = request;
    if (Buffer.isBuffer(body) || typeof body === 'string') hash.update(body);
    else if (body !== undefined) hash.update(JSON.stringify(body) ?? '');
    return hash.digest('hex');
  }

  /**
   * Runs the handler holding the key: what is written to the response is captured, and stored
   * (or the key freed) before it is sent. If the client goes away and nothing is ever sent, the
   * lease is no longer renewed once the handler has settled.
   */
  private runHolding(
    claim: IdempotencyClaim,
    response: HttpResponse,
    route: ResolvedIdempotentSettings,
    next: CallHandler,
  ): Observable<unknown> {
    const raw = response.raw ?? (response as unknown as ServerResponse);
    const capture = new ResponseCapture(
      raw,
      () => response.getHeaders(),
      this.settings.maxResponseBytes,
      (written) => this.settle(claim, written, route),
    );
    let settled = false;
    let closed = false;
    raw.once('close', () => {
      closed = true;
      if (settled && !capture.ended) claim.abandon();
    });
    return next.handle().pipe(
      finalize(() => {
        settled = true;
        if (closed && !capture.ended) claim.abandon();
      }),
    );
  }

  /** Stores the written response, or frees the key for a 5xx (or a 4xx without `storeClientErrors`) or a body too large to keep. */
  private async settle(claim: IdempotencyClaim, written: WrittenResponse, route: ResolvedIdempotentSettings): Promise<void> {
    const { status, body } = written;
    if (body === undefined) {
      this.logger.warn(
        `The response of idempotency key "${claim.key}" was not stored: its body is over ${this.settings.maxResponseBytes} bytes (maxResponseBytes); the key is freed`,
      );
      await claim.release();
    } else if (status >= 500 || (status >= 400 && !route.storeClientErrors)) await claim.release();
    else await claim.complete({ status, headers: this.replayedHeaders(written.headers), body }, route.ttlMs);
  }

  /**
   * Sets the stored status and headers, and answers the stored bytes, for Nest to send (as a
   * `StreamableFile`, written as they are). A route that sends its own response (`@Res()`) is
   * answered here, as Nest sends nothing for it.
   */
  private replay(response: HttpResponse, record: IdempotencyRecord, sendsOwnResponse: boolean): StreamableFile | undefined {
    response.status(record.status ?? 200);
    for (const [name, value] of record.headers) setHeader(response, name, value);
    if (this.settings.replayedHeader !== false) setHeader(response, this.settings.replayedHeader, 'true');
    if (sendsOwnResponse) {
      // Express's response is Node's own; a Fastify reply sends a Buffer as it is.
      if (typeof response.setHeader === 'function') (response as unknown as ServerResponse).end(record.body);
      else response.send?.(record.body);
      return undefined;
    }
    if (record.body.length === 0) return undefined;
    const type = record.headers.find(([name]) => name === 'content-type')?.[1];
    return new StreamableFile(record.body, { type: typeof type === 'string' ? type : undefined, length: record.body.length });
  }

  private replayedHeaders(headers: OutgoingHttpHeaders): StoredHeader[] {
    const stored: StoredHeader[] = [];
    for (const [name, value] of Object.entries(headers)) {
      const lower = name.toLowerCase();
      if (value === undefined || !this.settings.replayHeaders.has(lower)) continue;
      stored.push([lower, Array.isArray(value) ? value.map(String) : String(value)]);
    }
    return stored;
  }

  /** The module's settings with the route's `@Idempotent()` options (the handler's over the controller's), resolved once per handler. */
  private routeSettings(context: ExecutionContext): RouteSettings {
    const [controller, handler] = [context.getClass(), context.getHandler()];
    let byHandler = this.routes.get(controller);
    if (!byHandler) this.routes.set(controller, (byHandler = new WeakMap()));
    let settings = byHandler.get(handler);
    if (!settings) {
      const options = this.reflector.getAllAndOverride<IdempotentOptions | undefined>(IDEMPOTENT_ROUTE, [handler, controller]) ?? {};
      const resolved = resolveSettings(options, '@Idempotent', this.settings);
      settings = { ...resolved, sendsOwnResponse: sendsOwnResponse(controller, handler.name) };
      byHandler.set(handler, settings);
    }
    return settings;
  }
}

/** Whether a handler takes `@Res()` or `@Next()` without `passthrough`: Nest then sends nothing of what it returns. */
function sendsOwnResponse(controller: Type, methodName: string): boolean {
  const parameters = (Reflect.getMetadata(ROUTE_ARGS_METADATA, controller, methodName) ?? {}) as Record<string, unknown>;
  const takesResponse = Object.keys(parameters).some((key) => RESPONSE_PARAMTYPES.has(key.split(':')[0]));
  return takesResponse && Reflect.getMetadata(RESPONSE_PASSTHROUGH_METADATA, controller, methodName) !== true;
}

/** Requests already seen, so that `@Idempotent()` on a controller and on its handler (or a global interceptor too) acts once. */
const intercepted = new WeakSet<object>();

function alreadyIntercepted(request: object): boolean {
  if (intercepted.has(request)) return true;
  intercepted.add(request);
  return false;
}

/** Works on Express (Node's `setHeader`, which leaves the value as it is) and Fastify (`header`). */
function setHeader(response: HttpResponse, name: string, value: string | readonly string[]): void {
  if (typeof response.setHeader === 'function') response.setHeader(name, value);
  else response.header?.(name, value);
}
