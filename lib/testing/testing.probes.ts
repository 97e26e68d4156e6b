import { createConnection, createServer } from 'node:net';

/** The loopback address every test server binds to. */
export const HOST = '127.0.0.1';

export interface Address {
  host: string;
  port: number;
}

/**
 * Sends one inline command to the server on `port` over a raw socket and resolves with the raw
 * reply text (`+PONG\r\n`, `$12\r\n...`). Needs no client, so it works on a server ioredis gave up on.
 *
 * @example
 * expect(await command(server.port, 'DBSIZE')).toBe(':0\r\n');
 */
export function command(port: number, line: string, host = HOST): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host, port });
    let reply = '';
    socket.setTimeout(2_000, () => socket.destroy(new Error(`No reply to "${line}" from ${host}:${port} within 2 s`)));
    socket.once('error', reject);
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.endsWith('\r\n')) {
        socket.end();
        resolve(reply);
      }
    });
    socket.write(`${line}\r\n`);
  });
}

/**
 * Resolves once `check` resolves true, trying every 50 ms; fails after `timeoutMs` with an error
 * that says what it waited for.
 */
export async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`Timed out after ${timeoutMs}ms waiting for ${what}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A loopback port that is free now (and, with `withBus`, port + 10000 too, for a cluster node's bus). */
export async function freePort(withBus = false): Promise<number> {
  for (;;) {
    const port = await listenOnce(0);
    if (port > 55_000) continue;
    if (!withBus || (await isFree(port + 10_000))) return port;
  }
}

export async function answersPing(port: number): Promise<boolean> {
  return (await command(port, 'PING').catch(() => '')).startsWith('+PONG');
}

/** Whether the server on `port` is a master (or a replica whose link to its master is up). */
export async function isMasterOrSyncedReplica(port: number): Promise<boolean> {
  const info = await command(port, 'INFO replication').catch(() => '');
  return info.includes('role:master') || info.includes('master_link_status:up');
}

export async function isMaster(port: number): Promise<boolean> {
  return (await command(port, 'INFO replication').catch(() => '')).includes('role:master');
}

export async function clusterStateOk(port: number): Promise<boolean> {
  return (await command(port, 'CLUSTER INFO').catch(() => '')).includes('cluster_state:ok');
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, HOST, () => {
      const { port: bound } = server.address() as { port: number };
      server.close(() => resolve(bound));
    });
  });
}

function isFree(port: number): Promise<boolean> {
  return listenOnce(port).then(
    () => true,
    () => false,
  );
}
