/**
 * The lease of a run while it runs: renewed every third of it; `signal` is aborted as soon as it
 * is known to be lost (a renewal found it no longer this instance's) or it would lapse before
 * another renewal could land. A renewal that fails for an outage is tried again sooner.
 */
export class RunLease {
  private readonly controller = new AbortController();
  private renewTimer: NodeJS.Timeout | undefined;
  private lapseTimer: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(
    private readonly leaseMs: number,
    /** Resolves with whether the lease was renewed; rejects when Redis could not answer. */
    private readonly renew: () => Promise<boolean>,
    /** Told of a renewal that failed (an outage is logged by whoever watches the connection). */
    private readonly failed: (error: unknown) => void,
  ) {
    this.keepUntil(performance.now() + leaseMs);
    this.renewIn(leaseMs / 3);
  }

  /** Aborted when the run no longer holds its fire's lease. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Stops renewing (the run ended). */
  end(): void {
    this.ended = true;
    clearTimeout(this.renewTimer);
    clearTimeout(this.lapseTimer);
  }

  private renewIn(delayMs: number): void {
    this.renewTimer = setTimeout(() => void this.renewNow(), Math.max(1, Math.floor(delayMs)));
    this.renewTimer.unref();
  }

  private async renewNow(): Promise<void> {
    const sent = performance.now();
    let renewed: boolean | undefined;
    try {
      renewed = await this.renew();
    } catch (error) {
      this.failed(error);
    }
    if (this.ended) return;
    if (renewed === false) return this.lose('the run lost its lease: another claim found it lapsed');
    if (renewed) this.keepUntil(sent + this.leaseMs);
    this.renewIn(renewed ? this.leaseMs / 3 : this.leaseMs / 10);
  }

  /** Arms the abort for the moment the lease lapses without a renewal. */
  private keepUntil(endsAt: number): void {
    clearTimeout(this.lapseTimer);
    this.lapseTimer = setTimeout(
      () => this.lose('the run lease lapsed before it could be renewed'),
      Math.max(1, endsAt - performance.now()),
    );
    this.lapseTimer.unref();
  }

  private lose(reason: string): void {
    if (this.ended) return;
    this.end();
    this.controller.abort(new Error(reason));
  }
}
