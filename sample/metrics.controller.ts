import { Controller, Get, Header, Inject } from '@nestjs/common';
import type { Registry } from 'prom-client';

/** The registry the library's metrics go to (`metrics: { prometheus: { registry } }` in AppModule). */
export const METRICS_REGISTRY = Symbol('sample:metrics-registry');

/** Prometheus scrapes the library's metrics here: cache lookups, rate-limit decisions, lock waits. */
@Controller('metrics')
export class MetricsController {
  constructor(@Inject(METRICS_REGISTRY) private readonly registry: Registry) {}

  @Get()
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
