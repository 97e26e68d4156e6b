import { expect } from 'vitest';

/** What a task holding a side of a read-write lock records, in the order things happened. */
export interface HoldEvent {
  kind: 'read' | 'write';
  /** The fencing token of its lock, which also tells the tasks apart. */
  token: number;
  at: 'enter' | 'leave';
}

/** The events as tasks write them to a Redis list: `enter:read:12`. */
export function parseEvents(lines: readonly string[]): HoldEvent[] {
  return lines.map((line) => {
    const [at, kind, token] = line.split(':');
    return { at: at as HoldEvent['at'], kind: kind as HoldEvent['kind'], token: Number(token) };
  });
}

/** How many tasks were inside at most, by the tasks' own record. */
export function heldTogether(events: readonly HoldEvent[]): { most: number } {
  let inside = 0;
  let most = 0;
  for (const event of events) {
    inside += event.at === 'enter' ? 1 : -1;
    most = Math.max(most, inside);
  }
  return { most };
}

/**
 * Asserts that no task was inside while a writer was (and a writer entered only when no one was
 * inside), that every task entered and left once, and that fencing tokens order each writer with
 * every other task: those that left before it entered have lower tokens, those that entered after
 * it left higher ones.
 */
export function assertExclusive(events: readonly HoldEvent[]): void {
  const spans = new Map<number, { kind: HoldEvent['kind']; enter: number; leave: number }>();
  const inside = new Set<number>();
  let writer: number | undefined;
  events.forEach((event, index) => {
    if (event.at === 'enter') {
      expect(spans.has(event.token), `token ${event.token} entered twice`).toBe(false);
      expect(writer, `a ${event.kind} (token ${event.token}) entered while writer ${writer} was inside`).toBeUndefined();
      if (event.kind === 'write') {
        expect([...inside], `writer ${event.token} entered while others were inside`).toEqual([]);
        writer = event.token;
      }
      inside.add(event.token);
      spans.set(event.token, { kind: event.kind, enter: index, leave: -1 });
    } else {
      expect(inside.has(event.token), `token ${event.token} left without entering`).toBe(true);
      inside.delete(event.token);
      if (writer === event.token) writer = undefined;
      spans.get(event.token)!.leave = index;
    }
  });
  expect(inside.size, 'tasks still inside at the end').toBe(0);
  for (const [token, span] of spans) {
    if (span.kind !== 'write') continue;
    for (const [otherToken, other] of spans) {
      if (otherToken === token) continue;
      if (other.leave < span.enter) expect(otherToken).toBeLessThan(token);
      else expect(otherToken).toBeGreaterThan(token);
    }
  }
}
