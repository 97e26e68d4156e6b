import { Logger } from '@nestjs/common';
import { startSample } from './sample.js';

const sample = await startSample({ port: Number(process.env.PORT ?? 3000), redisUrl: process.env.REDIS_URL, databaseUrl: process.env.DATABASE_URL });
new Logger('Sample').log(`Listening on ${sample.url} - see README.md (Sample app) for what to try`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    sample.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  });
}
