import { Logger } from '@nestjs/common';
import { describe, expect, it, vi } from 'vitest';
import { LeaderService, ScheduledJobsService } from '../../lib/index.js';
import { startContext, topologies } from '../support/testing-app.js';

// As if @nestjs/schedule were not installed beside the library: it is an optional peer.
vi.mock('@nestjs/schedule', () => {
  throw new Error("Cannot find package '@nestjs/schedule'");
});

describe('the library without @nestjs/schedule installed', () => {
  it('starts; leaders and interval jobs work; a cron job says what to install', async () => {
    const error = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const app = await startContext({ connection: topologies[0].connection() });
    const election = await app.get(LeaderService).elect('alone', { lease: '1s' });
    expect(election.isLeader).toBe(true);
    expect(election.term).toBe(1);
    const jobs = app.get(ScheduledJobsService);
    let runs = 0;
    expect(await jobs.oncePerFire('every-minute', () => void runs++, { interval: '1m' }).fire()).toBe('ran');
    expect(runs).toBe(1);
    await expect(jobs.oncePerFire('cron-job', () => void runs++).fire()).rejects.toThrow(
      'Cron jobs once per fire need @nestjs/schedule: npm install @nestjs/schedule',
    );
    await app.close();
    expect(election.signal.aborted).toBe(true);
    expect(error.mock.calls).toEqual([]);
    vi.restoreAllMocks();
  });
});
