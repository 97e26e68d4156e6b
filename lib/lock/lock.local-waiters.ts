/**
 * A waiter whose pause ends within this many ms tries soon enough by itself: a release then wakes
 * no one, since a wake-up would only add an attempt (one that the other's may well beat).
 */
const SOON_MS = 1;

/**
 * Acquisitions of this instance that pause between attempts on a busy lock, by the lock's fence
 * keys (one per key locked, shared by both sides of a read-write lock). When this instance
 * releases a lock, the waiter on each of its keys that has paused longest tries again at once,
 * instead of at the end of its retry pause: a hand-off between callers of one instance takes the
 * release's round trip and one attempt's. Waiters on other instances still try on their own
 * timers, so a busy key tends to stay with the callers of the instance that releases it; fair
 * locks serve waiters in the order they came, across instances.
 */
export class LocalWaiters {
  /** The waiters pausing on each fence key, in the order they began their pause, with when it ends (performance.now()). */
  private readonly byKey = new Map<string, Map<() => void, number>>();

  /** Resolves after `ms`, or sooner when this instance releases a lock on one of `keys`. */
  pause(keys: readonly string[], ms: number): Promise<void> {
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

  /** A lock on `keys` was released here: on each key, the waiter that has paused longest tries again now. */
  released(keys: readonly string[]): void {
    const now = performance.now();
    for (const key of keys) {
      const waiters = this.byKey.get(key);
      if (waiters) nextToWake(waiters, now)?.();
    }
  }

  /** At shutdown: every waiter ends its pause now (and finds the service shutting down). */
  wakeAll(): void {
    const waiters = new Set([...this.byKey.values()].flatMap((pausing) => [...pausing.keys()]));
    for (const wake of waiters) wake();
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
