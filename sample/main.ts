import { Logger } from '@nestjs/common';
import { startSample } from './sample.js';

const sample = await startSample({
  port: Number(process.env.PORT ?? 3000),
  redisUrl: process.env.REDIS_URL,
  databaseUrl: process.env.DATABASE_URL,
  // Signs the session cookie; unset, a random secret is made (see startSample). Production must set it.
  sessionSecret: process.env.SESSION_SECRET,
});
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
