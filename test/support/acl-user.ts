import { Redis } from 'ioredis';
import { afterAll, beforeAll, inject } from 'vitest';
import type { RedisConnectionOptions } from '../../lib/index.js';
import { uniquePrefix } from './testing-app.js';

const PASSWORD = 'secret';

/**
 * A Redis ACL user of the suite, on every node of the topology (ACLs are per node, also on a
 * Cluster), deleted after the suite. Call it in a `describe`.
 * @example
 * const acl = aclUser(topology, 'bus');
 * await acl.set('reset', 'on', '~*', 'resetchannels', '+@all');
 * await startContext({ connection: acl.connection(connection()) });
 */
export function aclUser(topology: string, name: string) {
  const { standalone, cluster } = inject('redis');
  const nodes = topology === 'standalone' ? [standalone] : cluster;
  const user = `${name}-${uniquePrefix().slice(1, -1)}`;
  let admins: Redis[] = [];
  beforeAll(() => {
    admins = nodes.map((node) => new Redis(node));
  });
  afterAll(async () => {
    await Promise.all(admins.map((admin) => admin.acl('DELUSER', user)));
    for (const admin of admins) admin.disconnect();
  });
  return {
    user,
    /** ACL SETUSER with these rules on every node, then the password (a `reset` among them clears it). */
    set: (...rules: string[]) => Promise.all(admins.map((admin) => admin.acl('SETUSER', user, ...rules, `>${PASSWORD}`))),
    /** `own` (a server, or a Cluster's nodes), logged in as this user. */
    connection(own: RedisConnectionOptions): RedisConnectionOptions {
      const credentials = { username: user, password: PASSWORD };
      return 'cluster' in own ? { cluster: { ...own.cluster, options: { redisOptions: credentials } } } : { ...own, ...credentials };
    },
  };
}
