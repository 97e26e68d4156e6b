/**
 * The last sequence number heard from each publisher on the invalidation bus, to tell when one of
 * its messages went missing. A publisher heard from for the first time must start at 1 (it may
 * have published before this instance listened: the bus then counts it as a gap, once). One not
 * heard from for `forgetAfterMs` (an instance that stopped) is forgotten.
 */
export class PublisherSequences {
  private readonly last = new Map<string, { seq: number; heardAt: number }>();

  constructor(private readonly forgetAfterMs: number) {}

  /** Records `seq` from `from`; true when a message of it before this one was not heard. */
  skipped(from: string, seq: number, now: number): boolean {
    const known = this.last.get(from);
    this.last.set(from, { seq: Math.max(seq, known?.seq ?? 0), heardAt: now });
    return known === undefined ? seq !== 1 : seq > known.seq + 1;
  }

  /** Forgets the publishers not heard from for `forgetAfterMs`. */
  forgetSilent(now: number): void {
    for (const [from, { heardAt }] of this.last) if (now - heardAt > this.forgetAfterMs) this.last.delete(from);
  }
}
