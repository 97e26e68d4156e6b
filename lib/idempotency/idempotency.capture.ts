import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

/** A response as it was written: its status, its headers and the bytes of its body (undefined when too large to keep). */
export interface WrittenResponse {
  status: number;
  headers: OutgoingHttpHeaders;
  body: Buffer | undefined;
}

type WriteCallback = (error?: Error | null) => void;
type Chunk = string | Uint8Array;

/**
 * Captures the response written to a Node.js `ServerResponse` (Express's response, or Fastify's
 * `reply.raw`): the bytes as the client receives them, after the framework's serialisation. The
 * body is held back until the response ends, then `settle` is given the whole response, and the
 * response is sent only once `settle` has finished: a stored response is in Redis before the
 * client can send its next request. A body larger than `maxBytes` is not kept: what was held back
 * is sent and the rest goes straight through, and `settle` gets no body.
 */
export class ResponseCapture {
  /** Whether the response has ended (`end` was called). */
  ended = false;
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private overflowed = false;
  private readonly write: ServerResponse['write'];
  private readonly end: ServerResponse['end'];

  constructor(
    private readonly raw: ServerResponse,
    /** The response's headers once it ends (Fastify keeps its own beside the raw response's). */
    private readonly headersOf: () => OutgoingHttpHeaders,
    private readonly maxBytes: number,
    /** Never rejects. */
    private readonly settle: (written: WrittenResponse) => Promise<void>,
  ) {
    this.write = raw.write;
    this.end = raw.end;
    raw.write = ((chunk: Chunk, encoding?: BufferEncoding | WriteCallback, callback?: WriteCallback) =>
      this.onWrite(chunk, encoding, callback)) as ServerResponse['write'];
    raw.end = ((chunk?: Chunk | (() => void), encoding?: BufferEncoding | (() => void), callback?: () => void) => {
      this.onEnd(chunk, encoding, callback);
      return raw;
    }) as ServerResponse['end'];
  }

  private onWrite(chunk: Chunk, encoding: BufferEncoding | WriteCallback | undefined, callback?: WriteCallback): boolean {
    const done = typeof encoding === 'function' ? encoding : callback;
    const bytes = toBuffer(chunk, typeof encoding === 'string' ? encoding : undefined);
    if (this.overflowed) return this.passWrite(bytes, done);
    this.keep(bytes);
    if (this.overflowed) return this.passWrite(this.takeKept(), done);
    if (done) process.nextTick(done);
    return true;
  }

  private onEnd(
    chunk: Chunk | (() => void) | undefined,
    encoding: BufferEncoding | (() => void) | undefined,
    callback: (() => void) | undefined,
  ): void {
    if (this.ended) return;
    this.ended = true;
    if (typeof chunk === 'function') [callback, chunk] = [chunk, undefined];
    else if (typeof encoding === 'function') [callback, encoding] = [encoding, undefined];
    if (chunk !== undefined && chunk !== null) this.keep(toBuffer(chunk, encoding as BufferEncoding | undefined));
    // Anything written from now on (by whoever answers after this) goes straight out.
    this.raw.write = this.write;
    this.raw.end = this.end;
    const body = this.overflowed ? undefined : this.takeKept();
    const send = () =>
      void (this.end as (chunk: Buffer, callback?: () => void) => void).call(this.raw, this.overflowed ? this.takeKept() : body!, callback);
    void this.settle({ status: this.raw.statusCode, headers: this.headersOf(), body }).then(send, send);
  }

  private passWrite(bytes: Buffer, done: WriteCallback | undefined): boolean {
    return (this.write as (chunk: Buffer, callback?: WriteCallback) => boolean).call(this.raw, bytes, done);
  }

  private keep(bytes: Buffer): void {
    this.chunks.push(bytes);
    this.size += bytes.length;
    if (this.size > this.maxBytes) this.overflowed = true;
  }

  private takeKept(): Buffer {
    const kept = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    this.chunks.length = 0;
    return kept;
  }
}

function toBuffer(chunk: Chunk, encoding: BufferEncoding | undefined): Buffer {
  if (typeof chunk === 'string') return Buffer.from(chunk, encoding ?? 'utf8');
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}
