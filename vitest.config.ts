import { availableParallelism } from 'node:os';
import swc from 'unplugin-swc';
import LongSuitesFirst from './test/support/long-suites-first.js';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // SWC keeps decorator metadata, which Nest's constructor injection needs.
  plugins: [swc.vite({ module: { type: 'es6' } })],
  test: {
    include: ['test/**/*.spec.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    setupFiles: ['reflect-metadata'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // expect.poll waits up to 5 s (not 1 s) for what another process, connection or timer brings
    // about: on a loaded 2-CPU machine a second is not always enough. Only a failing poll takes longer.
    expect: { poll: { timeout: 5_000 } },
    pool: 'forks',
    // Most suites wait on Redis, timers and child processes, not on the CPU: more files at once
    // than there are CPUs (vitest's default is one fewer, a single file at a time on 2 CPUs).
    maxWorkers: availableParallelism() + 1,
    sequence: { sequencer: LongSuitesFirst },
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
