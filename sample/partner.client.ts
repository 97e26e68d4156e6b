import { Injectable, Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { RateLimit } from '../lib/index.js';

/**
 * A client of a (pretend) third-party API that accepts at most 2 calls per second per tenant.
 * The method policy throttles our side, across every instance of the app: over the limit a call
 * waits until it may go (`onLimit: 'wait'`, at most `maxWait`, 30s by default, then it throws
 * `RateLimitExceededException`) instead of getting rejected by the partner.
 */
@Injectable()
export class PartnerClient {
  private readonly logger = new Logger('PartnerClient');

  /** Resolves with when the call really went out, after any wait for the rate limit. */
  @RateLimit<[string]>({ key: (tenant) => tenant, limit: 2, window: '1s', onLimit: 'wait' })
  async notify(tenant: string): Promise<{ sentAt: number }> {
    const sentAt = Date.now();
    await sleep(10); // the pretend HTTP call
    this.logger.log(`notified the partner for tenant ${tenant}`);
    return { sentAt };
  }
}
