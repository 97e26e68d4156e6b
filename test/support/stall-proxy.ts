import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { Address } from './redis-server.js';

/** One client connection through the proxy. */
interface Link {
  client: Socket;
  server: Socket;
  /** Whether the client sent (S)SUBSCRIBE on it: a subscriber connection. */
  subscriber: boolean;
  /** What the server sent while subscribers were stalled, held back until `resume()`. */
  held: Buffer[];
}

/**
 * A TCP proxy in front of one Redis server that can stall the subscriber connections (those that
 * sent SUBSCRIBE or SSUBSCRIBE) without closing them: what the server sends them is held back
 * until `resume()`, while every other connection keeps flowing. A subscriber that hears nothing
 * but stays connected, for tests of what a near cache does then.
 *
 * @example
 * const proxy = await StallProxy.start(server.address);
 * proxy.stallSubscribers();
 * proxy.resume();
 */
export class StallProxy {
  private readonly links = new Set<Link>();
  private stalled = false;

  private constructor(
    private readonly server: Server,
    readonly address: Address,
  ) {}

  static async start(target: Address): Promise<StallProxy> {
    const links: { proxy?: StallProxy } = {};
    const server = createServer((client) => links.proxy?.link(client, target));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    links.proxy = new StallProxy(server, { host: '127.0.0.1', port });
    return links.proxy;
  }

  /** How many subscriber connections go through the proxy now. */
  get subscribers(): number {
    return [...this.links].filter((link) => link.subscriber).length;
  }

  /** Holds back everything the server sends to subscriber connections from now on. */
  stallSubscribers(): void {
    this.stalled = true;
  }

  /** Delivers what was held back, in order, and lets everything flow again. */
  resume(): void {
    this.stalled = false;
    for (const link of this.links) for (const chunk of link.held.splice(0)) link.client.write(chunk);
  }

  async close(): Promise<void> {
    for (const link of this.links) {
      link.client.destroy();
      link.server.destroy();
    }
    await new Promise((resolve) => this.server.close(resolve));
  }

  private link(client: Socket, target: Address): void {
    const server = createConnection(target);
    const link: Link = { client, server, subscriber: false, held: [] };
    this.links.add(link);
    client.on('data', (chunk) => {
      if (/subscribe/i.test(chunk.toString('latin1'))) link.subscriber = true;
      server.write(chunk);
    });
    server.on('data', (chunk) => {
      if (this.stalled && link.subscriber) link.held.push(chunk);
      else client.write(chunk);
    });
    const end = () => {
      this.links.delete(link);
      client.destroy();
      server.destroy();
    };
    client.on('error', end).on('close', end);
    server.on('error', end).on('close', end);
  }
}
