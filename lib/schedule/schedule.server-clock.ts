/** One reading of the server's clock: the offset it gives and the round trip it took. */
interface ClockReading {
  offsetMs: number;
  roundTripMs: number;
  takenAt: number;
}

/** Readings older than this (by this instance's clock) no longer vote. */
const WINDOW_MS = 60_000;
/** At most this many readings are kept. */
const MAX_READINGS = 16;

/**
 * How far the Redis server's clock is ahead of this instance's, from round trips that read the
 * server's time. A reading is taken at the round trip's middle, so its error is at most half the
 * round trip; and a busy event loop that handles a reply late makes a long round trip whose middle
 * is late, which would name a fire by a clock that runs behind. So the estimate is the reading with
 * the shortest round trip of the last minute. When a new reading cannot be true together with that
 * one (their intervals, offset ± half the round trip, do not meet), the server's clock has moved
 * (a failover to a server whose clock differs): the older readings are dropped.
 */
export class ServerClockOffset {
  private readings: ClockReading[] = [];
  private best: ClockReading | undefined;

  /** The current estimate, in milliseconds (0 before the first reading). */
  get offsetMs(): number {
    return this.best?.offsetMs ?? 0;
  }

  /** Records a reading: `serverNow` answered by a call sent at `sentAt` whose reply came at `receivedAt` (this instance's clock). */
  record(sentAt: number, receivedAt: number, serverNow: number): void {
    const reading = { offsetMs: serverNow - (sentAt + receivedAt) / 2, roundTripMs: Math.max(0, receivedAt - sentAt), takenAt: receivedAt };
    if (this.best && !agree(this.best, reading)) this.readings = [];
    this.readings = [...this.readings.filter((kept) => receivedAt - kept.takenAt <= WINDOW_MS), reading].slice(-MAX_READINGS);
    this.best = this.readings.reduce((best, kept) => (kept.roundTripMs < best.roundTripMs ? kept : best));
  }
}

/** Whether two readings can both hold: each says the offset lies within half its round trip of its value. */
function agree(one: ClockReading, other: ClockReading): boolean {
  return Math.abs(one.offsetMs - other.offsetMs) <= (one.roundTripMs + other.roundTripMs) / 2;
}
