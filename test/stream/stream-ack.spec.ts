import { Logger } from '@nestjs/common';
import { describe, expect, it, vi } from 'vitest';
import { RedisConnections, RedisKeys, StreamService } from '../../lib/index.js';
import { aclUser } from '../support/acl-user.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';

describe.each(topologies)('stream acknowledgements on $topology', ({ topology, connection }) => {
  const acl = aclUser(topology, 'acks');

  it('handles a whole read while its acknowledgements fail, keeps every entry pending, and loses none', async () => {
    const error = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    // A user who may run anything but XACK: every acknowledgement fails with NOPERM.
    await acl.set('reset', 'on', '~*', '&*', '+@all', '-xack');
    const denied = acl.connection(connection());
    const keyPrefix = uniquePrefix();
    const [writer, app] = await Promise.all([
      startContext({ connection: connection(), keyPrefix }),
      startContext({ connection: denied, keyPrefix }),
    ]);
    const pending = async () => {
      const key = writer.get(RedisKeys).tagged(['stream', 'acks']);
      return Number(((await writer.get(RedisConnections).get().xpending(key, 'g')) as [number])[0]);
    };
    try {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push(await writer.get(StreamService).add('acks', i));
      // One read takes all five; claimIdle is long, so nothing is claimed again meanwhile.
      const handled: string[] = [];
      const first = await app
        .get(StreamService)
        .consume('acks', 'g', (_event, info) => void handled.push(info.id), { batch: 10, block: '100ms', claimIdle: '1m', from: 'start' });
      await expect.poll(() => handled).toEqual(ids);
      await expect.poll(() => error.mock.calls.filter(([message]) => String(message).includes('NOPERM')).length).toBe(1);
      expect(await pending()).toBe(5);
      await first.stop();

      // Allowed again: another member claims the five, handles and acknowledges them.
      await acl.set('+xack');
      const again: string[] = [];
      const second = await app.get(StreamService).consume('acks', 'g', (_event, info) => void again.push(info.id), {
        consumer: 'second',
        block: '100ms',
        claimIdle: '100ms',
        from: 'start',
      });
      await expect.poll(() => pending(), { timeout: 10_000 }).toBe(0);
      expect([...again].sort()).toEqual(ids);
      await second.stop();
    } finally {
      await Promise.all([writer.close(), app.close()]);
      vi.restoreAllMocks();
    }
  });
});
