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
import { OrdersController } from './orders.controller.js';
import { PartnerClient } from './partner.client.js';
import { PartnersController } from './partners.controller.js';
import { PaymentsController } from './payments.controller.js';
import { PaymentsService } from './payments.service.js';
import { ProductsController } from './products.controller.js';
import { ProductsRepository } from './products.repository.js';
import { SearchController } from './search.controller.js';
import { VisitsController } from './visits.controller.js';

@Module({})
export class AppModule {
  static forRedis(redisUrl: string, databaseUrl?: string): DynamicModule {
    return {
      module: AppModule,
      imports: [
        TerminusModule.forRoot({ errorLogStyle: 'pretty' }),
        RedisPatternsModule.forRoot({ connection: { url: redisUrl }, keyPrefix: 'sample:', isGlobal: true, cache: { ttl: '5m' } }),
      ],
      controllers: [HealthController, VisitsController, NotificationsController, OrdersController, ProductsController, SearchController, LoginController, PartnersController, PaymentsController, JobsController],
      providers: [FulfilmentWorker, Database, { provide: DATABASE_URL, useValue: databaseUrl }, ProductsRepository, PartnerClient, PaymentsService, NightlyReportJob],
    };
  }
}
