import { CacheModule } from '@nestjs/cache-manager';
import { Module, type DynamicModule, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { TerminusModule } from '@nestjs/terminus';
import { ThrottlerModule } from '@nestjs/throttler';
import { Registry } from 'prom-client';
import { CacheService, RedisKeyvStore, RedisPatternsModule, RedisThrottlerStorage } from '../lib/index.js';
import { AccountsController } from './accounts.controller.js';
import { ActivityController } from './activity.controller.js';
import { CART_SECRET, CartController, CartSessionMiddleware } from './cart.controller.js';
import { ConfigController, ConfigDocuments } from './config.controller.js';
import { CatalogOverviewController } from './catalog-overview.controller.js';
import { DashboardController } from './dashboard.controller.js';
import { DashboardService } from './dashboard.service.js';
import { Database, DATABASE_URL } from './database.js';
import { HealthController } from './health.controller.js';
import { InsightsController } from './insights.controller.js';
import { JobsController } from './jobs.controller.js';
import { LoginController } from './login.controller.js';
import { METRICS_REGISTRY, MetricsController } from './metrics.controller.js';
import { NightlyReportJob } from './nightly-report.job.js';
import { NotificationsController } from './notifications.controller.js';
import { OrderStatsPoller } from './order-stats.poller.js';
import { EmailsController, EmailsWorker } from './emails.worker.js';
import { FulfilmentWorker } from './fulfilment.worker.js';
import { fulfilmentClientProvider } from './fulfilment.microservice.js';
import { GamesController } from './games.controller.js';
import { OrdersController } from './orders.controller.js';
import { PartnerClient } from './partner.client.js';
import { PartnersController } from './partners.controller.js';
import { PagesController } from './pages.controller.js';
import { PaymentsController } from './payments.controller.js';
import { PaymentsService } from './payments.service.js';
import { ProfilesController, ProfilesRepository } from './profiles.controller.js';
import { QuotesController, throttlerOptions } from './quotes.controller.js';
import { ProductsController } from './products.controller.js';
import { ProductsRepository } from './products.repository.js';
import { ReportsController } from './reports.controller.js';
import { SearchController } from './search.controller.js';
import { SessionController } from './session.controller.js';
import { StoresController } from './stores.controller.js';
import { TicketDesk, TicketsController } from './tickets.controller.js';
import { VisitsController } from './visits.controller.js';

@Module({})
export class AppModule implements NestModule {
  /** express-session, with the library's store, on the cart's routes only. */
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(CartSessionMiddleware).forRoutes(CartController);
  }

  /** `sessionSecret` signs the session cookie: at least 32 characters (see startSample). */
  static forRedis(redisUrl: string, databaseUrl: string | undefined, sessionSecret: string): DynamicModule {
    // The app's own registry (not prom-client's global one), scraped at GET /metrics.
    const metricsRegistry = new Registry();
    return {
      module: AppModule,
      imports: [
        TerminusModule.forRoot({ errorLogStyle: 'pretty' }),
        // @nestjs/schedule: NightlyReportJob (@Cron + @OncePerFire) and OrderStatsPoller (@Interval + @OnlyOnLeader).
        ScheduleModule.forRoot(),
        RedisPatternsModule.forRoot({
          connection: { url: redisUrl },
          keyPrefix: 'sample:',
          isGlobal: true,
          // L1 (ProductsRepository.find) kept honest by Redis's client tracking: a change to a cached
          // entry from anywhere (another service, redis-cli, expiry, eviction) drops every instance's copy.
          cache: { ttl: '5m', l1: { invalidation: 'tracking' } },
          // Metrics (MetricsController): every feature's numbers, in Prometheus text at /metrics.
          metrics: { prometheus: { registry: metricsRegistry } },
          // Server insights (InsightsController): the server's numbers as redis_* gauges at
          // /metrics, refreshed every 15 seconds, and in /health.
          insights: { interval: '15s' },
          // Sessions (SessionController): idle for 30 minutes or 8 hours old, a session is over.
          // The cookie is Secure (browsers accept that on http://localhost too), HttpOnly and
          // SameSite=Lax. No Bearer ids: the id never leaves the HttpOnly cookie. At most 3
          // devices per user: a fourth login ends the oldest session (announced as evicted).
          session: {
            idleTtl: '30m',
            absoluteTtl: '8h',
            cookie: { secret: sessionSecret, secure: true, sameSite: 'lax' },
            bearer: false,
            maxSessionsPerUser: 3,
            onLimit: 'evict-oldest',
          },
          // Leaderboards (GamesController): all time, and weekly (Monday to Sunday, UTC; the last
          // 4 weeks stay readable).
          leaderboards: { arcade: {}, 'arcade-weekly': { period: 'week', retain: 4 } },
          // Unique visitors (PagesController): distinct visitors of the site per day, a week kept.
          uniqueCounters: { 'site-visitors': { period: 'day', retain: 7 } },
          // Geo (StoresController): the stores, found by distance.
          geo: { stores: {} },
          // Activity bitmaps (ActivityController): daily actives, 35 days kept for retention.
          activity: { users: { period: 'day', retain: 35 } },
          // Work queue (EmailsController, EmailsWorker): at most 5 attempts, then the dead list.
          queues: { emails: { maxAttempts: 5 } },
          // Bloom filter (ProductsController): every product id, prefilled from the database at
          // startup; ids added on create. RedisBloom when the server has it, else a bitmap.
          bloomFilters: {
            'product-ids': {
              capacity: 100_000,
              errorRate: 0.001,
              prefill: (ref) => ref.get(ProductsRepository, { strict: false }).allIds(),
            },
          },
        }),
        // @nestjs/cache-manager on the library's cache (CatalogOverviewController): its routes
        // keep its CacheInterceptor and @CacheTTL; the entries live in the module's cache.
        CacheModule.registerAsync({
          inject: [CacheService],
          useFactory: (cache: CacheService) => ({ stores: [new RedisKeyvStore(cache, { decoded: true })], ttl: 60_000 }),
        }),
        // @nestjs/throttler (QuotesController), its hits counted in Redis by RedisThrottlerStorage.
        ThrottlerModule.forRootAsync({ inject: [RedisThrottlerStorage], useFactory: throttlerOptions }),
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
        ReportsController,
        GamesController,
        CartController,
        PagesController,
        StoresController,
        ActivityController,
        EmailsController,
        AccountsController,
        ProfilesController,
        MetricsController,
        InsightsController,
        DashboardController,
        ConfigController,
        TicketsController,
        CatalogOverviewController,
        QuotesController,
      ],
      providers: [
        CartSessionMiddleware,
        { provide: CART_SECRET, useValue: sessionSecret },
        FulfilmentWorker,
        fulfilmentClientProvider,
        Database,
        { provide: DATABASE_URL, useValue: databaseUrl },
        ProductsRepository,
        PartnerClient,
        PaymentsService,
        NightlyReportJob,
        OrderStatsPoller,
        EmailsWorker,
        ProfilesRepository,
        { provide: METRICS_REGISTRY, useValue: metricsRegistry },
        DashboardService,
        ConfigDocuments,
        TicketDesk,
      ],
    };
  }
}
