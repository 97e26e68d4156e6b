/**
 * A waiter whose pause ends within this many ms tries soon enough by itself: a release then wakes
 * no one, since a wake-up would only add an attempt (one that the other's may well beat).
 */
const SOON_MS = 1;

/**
 * An exclusive acquisition of this instance waiting in line on its keys (see {@link LocalWaiters.join}).
 * Only the first of a line tries; those behind it wait for their turn.
 */
export interface PlaceInLine {
  readonly keys: readonly string[];
  /** The line's name: its keys, as one string. */
  readonly line: string;
  /** While it waits behind another: starts its turn, with the pause it would have taken. */
  promote?(): void;
  /** While it waits behind another: ends its wait at once (at shutdown). */
  wake?(): void;
}

/**
 * Acquisitions of this instance that pause between attempts on a busy lock, by the lock's fence
 * keys (one per key locked, shared by both sides of a read-write lock). When this instance
 * releases a lock, the waiter on each of its keys that has paused longest tries again at once,
 * instead of at the end of its retry pause: a hand-off between callers of one instance takes the
 * release's round trip and one attempt's. Waiters on other instances still try on their own
 * timers, so a busy key tends to stay with the callers of the instance that releases it; fair
 * locks serve waiters in the order they came, across instances.
 *
 * Exclusive acquisitions (one holder at a time: a lock, a write side, all of a semaphore's
 * permits) on the same keys also wait in line, in the order their first attempt failed: only the
 * first of the line tries, and each behind it takes its turn when the one ahead leaves (granted,
 * given up, or failed). Dozens of callers of one instance waiting on one key then send one
 * attempt at a time, not one each, and are served in the order they came.
 */
export class LocalWaiters {
  /** The waiters pausing on each fence key, in the order they began their pause, with when it ends (performance.now()). */
  private readonly byKey = new Map<string, Map<() => void, number>>();
  /** The lines of exclusive acquisitions, by their keys; the first of each tries, the rest wait. */
  private readonly lines = new Map<string, PlaceInLine[]>();

  /** Puts an exclusive acquisition of `keys` at the back of their line; it must {@link leave} once done waiting. */
  join(keys: readonly string[]): PlaceInLine {
    const place: PlaceInLine = { keys, line: JSON.stringify(keys) };
    const line = this.lines.get(place.line);
    if (line) line.push(place);
    else this.lines.set(place.line, [place]);
    return place;
  }

  /** Takes `place` out of its line; the one behind it, if it was first, begins its turn. */
  leave(place: PlaceInLine): void {
    const line = this.lines.get(place.line);
    const index = line?.indexOf(place) ?? -1;
    if (!line || index < 0) return;
    line.splice(index, 1);
    if (line.length === 0) this.lines.delete(place.line);
    else if (index === 0) line[0].promote?.();
  }

  /**
   * Resolves when the next attempt is due: after `ms`, or sooner when this instance releases a
   * lock on one of `keys`. An acquisition behind another in its line (`place`) waits instead for
   * its turn, then pauses `ms` as the first does; at most `leftMs` in all (the end of its wait).
   */
  pause(keys: readonly string[], ms: number, place?: PlaceInLine, leftMs = ms): Promise<void> {
    if (!place || this.lines.get(place.line)?.[0] === place) return this.pauseFirst(keys, ms);
    const endsAt = performance.now() + leftMs;
    return new Promise((resolve) => {
      const turn = (pause: () => Promise<void> | void) => {
        clearTimeout(timer);
        place.promote = place.wake = undefined;
        resolve(pause());
      };
      const timer = setTimeout(() => turn(() => undefined), leftMs);
      // The pause begins at once (not a microtask later): a release that follows finds it.
      place.promote = () => turn(() => this.pauseFirst(keys, Math.max(0, Math.min(ms, endsAt - performance.now()))));
      place.wake = () => turn(() => undefined);
    });
  }

  /** A lock on `keys` was released here: on each key, the waiter that has paused longest tries again now. */
  released(keys: readonly string[]): void {
    const now = performance.now();
    for (const key of keys) {
      const waiters = this.byKey.get(key);
      if (waiters) nextToWake(waiters, now)?.();
    }
  }

  /** At shutdown: every waiter ends its pause or its wait in line now (and finds the service shutting down). */
  wakeAll(): void {
    const waiters = new Set([...this.byKey.values()].flatMap((pausing) => [...pausing.keys()]));
    for (const wake of waiters) wake();
    for (const line of [...this.lines.values()]) for (const place of line) place.wake?.();
  }

  /** Resolves after `ms`, or sooner when this instance releases a lock on one of `keys`. */
  private pauseFirst(keys: readonly string[], ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        for (const key of keys) this.forget(key, wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      const endsAt = performance.now() + ms;
      for (const key of keys) {
        const waiters = this.byKey.get(key);
        if (waiters) waiters.set(wake, endsAt);
        else this.byKey.set(key, new Map([[wake, endsAt]]));
      }
    });
  }

  private forget(key: string, wake: () => void): void {
    const waiters = this.byKey.get(key);
    if (waiters?.delete(wake) && waiters.size === 0) this.byKey.delete(key);
  }
}

/** The waiter that began its pause first, unless one of them tries within {@link SOON_MS} anyway. */
function nextToWake(waiters: ReadonlyMap<() => void, number>, now: number): (() => void) | undefined {
  let first: (() => void) | undefined;
  for (const [wake, endsAt] of waiters) {
    if (endsAt - now <= SOON_MS) return undefined;
    first ??= wake;
  }
  return first;
}
