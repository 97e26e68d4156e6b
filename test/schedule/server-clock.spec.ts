import { describe, expect, it } from 'vitest';
import { ServerClockOffset } from '../../lib/schedule/schedule.server-clock.js';

describe('ServerClockOffset: how far the server clock is ahead, from readings', () => {
  it('is 0 before any reading, and the middle of the round trip after one', () => {
    const clock = new ServerClockOffset();
    expect(clock.offsetMs).toBe(0);
    clock.record(1_000, 1_010, 1_505);
    expect(clock.offsetMs).toBe(500);
  });

  it('keeps the quickest reading: a reply handled late by a busy event loop does not pull the clock back', () => {
    const clock = new ServerClockOffset();
    clock.record(1_000, 1_004, 1_502); // offset 500, round trip 4
    // The server read its clock 1 ms after the send, but the reply was handled 600 ms later.
    clock.record(2_000, 2_601, 2_501); // offset 200.5 ± 300.5: agrees with 500 ± 2, but is less sure
    expect(clock.offsetMs).toBe(500);
    clock.record(3_000, 3_002, 3_501); // offset 500, round trip 2: the quickest now
    expect(clock.offsetMs).toBe(500);
  });

  it('follows a server clock that moved: a reading that cannot hold with the best drops the older ones', () => {
    const clock = new ServerClockOffset();
    clock.record(1_000, 1_002, 1_501);
    // A failover to a server 2 s behind: 500 ± 1 and -1500 ± 10 cannot both hold.
    clock.record(2_000, 2_020, 508);
    expect(clock.offsetMs).toBe(-1_502);
    clock.record(3_000, 3_030, 1_515);
    expect(clock.offsetMs).toBe(-1_502);
  });

  it('lets readings older than a minute stop voting', () => {
    const clock = new ServerClockOffset();
    clock.record(0, 2, 501); // offset 500 ± 1
    clock.record(61_000, 61_040, 61_530); // offset 510 ± 20: agrees, slower, but the first has aged out
    expect(clock.offsetMs).toBe(510);
  });
});
