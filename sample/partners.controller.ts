import { Controller, HttpCode, Param, Post } from '@nestjs/common';
import { PartnerClient } from './partner.client.js';

/** Outbound calls throttled by a method policy on `PartnerClient.notify` (no guard needed here). */
@Controller('partners')
export class PartnersController {
  constructor(private readonly partner: PartnerClient) {}

  /** `for i in 1 2 3; do curl -X POST http://127.0.0.1:3000/partners/acme/notify; echo; done` (the third waits) */
  @Post(':tenant/notify')
  @HttpCode(200)
  async notify(@Param('tenant') tenant: string): Promise<{ tenant: string; waitedMs: number }> {
    const requestedAt = Date.now();
    const { sentAt } = await this.partner.notify(tenant);
    return { tenant, waitedMs: sentAt - requestedAt };
  }
}
