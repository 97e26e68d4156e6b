import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The suites that take longest (measured on a 2-CPU machine), started first: on a fresh clone
 * vitest knows no durations and starts the larger files first, which leaves one of these running
 * alone at the end. Any suite not listed keeps vitest's own order, after these.
 */
const LONG_SUITES = [
  'test/cache/keyv-test-suite.spec.ts',
  'test/e2e/sample.e2e.spec.ts',
  'test/microservices/microservices-processes.spec.ts',
  'test/schedule/schedule-processes.spec.ts',
  'test/cache/cache-bulk.spec.ts',
  'test/cache/cache-tracking.spec.ts',
  'test/lock/lock-read-write-processes.spec.ts',
  'test/ratelimit/ratelimit.service.spec.ts',
  'test/ratelimit/throttler-guard.e2e.spec.ts',
];

export default class LongSuitesFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (file: TestSpecification) => {
      const index = LONG_SUITES.findIndex((suite) => file.moduleId.endsWith(suite));
      return index === -1 ? LONG_SUITES.length : index;
    };
    return sorted
      .map((file, order) => ({ file, order }))
      .sort((a, b) => rank(a.file) - rank(b.file) || a.order - b.order)
      .map(({ file }) => file);
  }
}
