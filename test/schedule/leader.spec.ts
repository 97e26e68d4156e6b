import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidOptionError, LeaderService, OnlyOnLeader, type LeaderElection, type Leadership } from '../../lib/index.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';

@Injectable()
class Poller {
  polls = 0;

  @OnlyOnLeader('poller', { lease: '300ms' })
  async poll() {
    return ++this.polls;
  }
}

describe.each(topologies)('LeaderService and @OnlyOnLeader, on $topology', ({ connection }) => {
  const apps: INestApplicationContext[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  const start = async (keyPrefix: string) => {
    const app = await startContext({ connection: connection(), keyPrefix }, { providers: [Poller] });
    apps.push(app);
    return app;
  };

  it('one of three leads; when it stops, another leads with a higher term, and each saw its changes', async () => {
    const keyPrefix = uniquePrefix();
    const instances = await Promise.all([0, 1, 2].map(() => start(keyPrefix)));
    const elections: LeaderElection[] = [];
    for (const app of instances) elections.push(await app.get(LeaderService).elect('main', { lease: '300ms' }));
    const seen: Leadership[][] = elections.map(() => []);
    elections.forEach((election, at) => election.changes$.subscribe((change) => seen[at].push(change)));
    expect(elections.map((election) => election.isLeader)).toEqual([true, false, false]);
    const [first] = elections;
    expect(first.signal.aborted).toBe(false);
    const firstTerm = first.term;
    await new Promise((resolve) => setTimeout(resolve, 700)); // renewed past its lease
    expect(elections.filter((election) => election.isLeader)).toEqual([first]);

    await first.stop();
    expect(first.signal.aborted).toBe(true);
    expect(first.isLeader).toBe(false);
    await expect.poll(() => elections.filter((election) => election.isLeader).length, { timeout: 2_000, interval: 10 }).toBe(1);
    const next = elections.find((election) => election.isLeader)!;
    expect(next.term).toBeGreaterThan(firstTerm);
    expect(seen[0]).toEqual([
      { isLeader: true, term: firstTerm },
      { isLeader: false, term: firstTerm },
    ]);
    expect(seen[elections.indexOf(next)]).toEqual([
      { isLeader: false, term: 0 },
      { isLeader: true, term: next.term },
    ]);
  });

  it('@OnlyOnLeader runs the method on the leader only; elsewhere it returns undefined', async () => {
    const keyPrefix = uniquePrefix();
    const [one, two] = await Promise.all([start(keyPrefix), start(keyPrefix)]);
    const results = [
      await one.get(Poller).poll(),
      await two.get(Poller).poll(),
      await one.get(Poller).poll(),
      await two.get(Poller).poll(),
    ];
    expect(results).toEqual([1, undefined, 2, undefined]);
  });

  it('options are checked: the error names the option', async () => {
    const leaders = (await start(uniquePrefix())).get(LeaderService);
    await expect(leaders.elect('', {})).rejects.toThrow(new InvalidOptionError('name', 'a non-empty string', ''));
    await expect(leaders.elect('x', { lease: '10ms' })).rejects.toThrow(/options.lease/);
    await expect(leaders.elect('x', { ttl: '1s' } as object)).rejects.toThrow(/options.ttl/);
    expect(() => OnlyOnLeader('')).toThrow(/@OnlyOnLeader name/);
  });
});
