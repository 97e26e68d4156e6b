import type { Reporter, TestModule } from 'vitest/node';

/**
 * Ends the run with a plain `N passed, N failed, N skipped` line that any CI can read, after the
 * full name of every skipped test and why (the note it gave `context.skip`).
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    const skipped: string[] = [];
    for (const testModule of testModules) {
      for (const test of testModule.children.allTests()) {
        const result = test.result();
        if (result.state === 'passed' || result.state === 'failed') counts[result.state]++;
        if (result.state === 'skipped') {
          counts.skipped++;
          skipped.push(`${test.fullName}: ${result.note ?? 'no reason given'}`);
        }
      }
    }
    for (const line of skipped) process.stdout.write(`\nskipped: ${line}`);
    process.stdout.write(`\n${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
  }
}
