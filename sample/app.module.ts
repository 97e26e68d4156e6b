import { Module, type DynamicModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { RedisPatternsModule } from '../lib/index.js';
import { Database, DATABASE_URL } from './database.js';
import { HealthController } from './health.controller.js';
import { JobsController } from './jobs.controller.js';
import { LoginController } from './login.controller.js';
import { NightlyReportJob } from './nightly-report.job.js';
import { NotificationsController } from './notifications.controller.js';
import { FulfilmentWorker } from './fulfilment.worker.js';
import { GamesController } from './games.controller.js';
import { OrdersController } from './orders.controller.js';
import { PartnerClient } from './partner.client.js';
import { PartnersController } from './partners.controller.js';
import { PaymentsController } from './payments.controller.js';
import { PaymentsService } from './payments.service.js';
import { ProductsController } from './products.controller.js';
import { ProductsRepository } from './products.repository.js';
import { SearchController } from './search.controller.js';
import { SessionController } from './session.controller.js';
import { VisitsController } from './visits.controller.js';

@Module({})
export class AppModule {
  /** `sessionSecret` signs the session cookie: at least 32 characters (see startSample). */
  static forRedis(redisUrl: string, databaseUrl: string | undefined, sessionSecret: string): DynamicModule {
    return {
      module: AppModule,
      imports: [
        TerminusModule.forRoot({ errorLogStyle: 'pretty' }),
        RedisPatternsModule.forRoot({
          connection: { url: redisUrl },
          keyPrefix: 'sample:',
          isGlobal: true,
          cache: { ttl: '5m' },
          // Sessions (SessionController): idle for 30 minutes or 8 hours old, a session is over.
          // The cookie is Secure (browsers accept that on http://localhost too), HttpOnly and
          // SameSite=Lax. No Bearer ids: the id never leaves the HttpOnly cookie.
          session: { idleTtl: '30m', absoluteTtl: '8h', cookie: { secret: sessionSecret, secure: true, sameSite: 'lax' }, bearer: false },
          // Leaderboards (GamesController): all time, and weekly (Monday to Sunday, UTC; the last
          // 4 weeks stay readable).
          leaderboards: { arcade: {}, 'arcade-weekly': { period: 'week', retain: 4 } },
          // Bloom filter (ProductsController): every product id, prefilled from the database at
          // startup; ids added on create. RedisBloom when the server has it, else a bitmap.
          bloomFilters: { 'product-ids': { capacity: 100_000, errorRate: 0.001, prefill: (ref) => ref.get(ProductsRepository, { strict: false }).allIds() } },
        }),
      ],
      controllers: [
        HealthController,
        VisitsController,
        NotificationsController,
        OrdersController,
        ProductsController,
        SearchController,
        LoginController,
        SessionController,
        PartnersController,
        PaymentsController,
        JobsController,
        GamesController,
      ],
      providers: [FulfilmentWorker, Database, { provide: DATABASE_URL, useValue: databaseUrl }, ProductsRepository, PartnerClient, PaymentsService, NightlyReportJob],
    };
  }
}
