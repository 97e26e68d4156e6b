import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { freePort, HOST, type Address } from '../support/redis-server.js';

/**
 * A TCP relay between an app and a real Redis server, which a test cuts and restores: while it is
 * cut the app cannot reach Redis (its connection drops, reconnects are refused) though the server
 * runs on, so the test decides when the app is back instead of racing its reconnect timer.
 */
export class RedisLink implements Address {
  readonly host = HOST;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly port: number,
    private readonly target: Address,
  ) {}

  /** Opens a link to `target` on a free port. */
  static async open(target: Address): Promise<RedisLink> {
    const link = new RedisLink(await freePort(), target);
    await link.restore();
    return link;
  }

  get address(): Address {
    return { host: this.host, port: this.port };
  }

  /** Drops every relayed connection and refuses new ones. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  /** Accepts connections again, each relayed to the target. */
  async restore(): Promise<void> {
    if (this.server) return;
    const server = createServer((socket) => this.relay(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, HOST, () => resolve());
    });
  }

  private relay(socket: Socket): void {
    const upstream = createConnection(this.target);
    for (const end of [socket, upstream]) {
      this.sockets.add(end);
      end.on('error', () => undefined); // either side closing ends both
      end.once('close', () => {
        this.sockets.delete(end);
        socket.destroy();
        upstream.destroy();
      });
    }
    socket.pipe(upstream).pipe(socket);
  }
}
