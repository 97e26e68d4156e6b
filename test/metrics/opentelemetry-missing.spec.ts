import { describe, expect, it, vi } from 'vitest';
import { startContext, topologies } from '../support/testing-app.js';

// As if @opentelemetry/api were not installed beside the library.
vi.mock('@opentelemetry/api', () => {
  throw new Error("Cannot find package '@opentelemetry/api'");
});

describe('metrics.openTelemetry without @opentelemetry/api', () => {
  it('refuses to start, naming the option and the package to install', async () => {
    await expect(startContext({ connection: topologies[0].connection(), metrics: { openTelemetry: true } })).rejects.toThrow(
      'Invalid option "metrics.openTelemetry": expected @opentelemetry/api installed beside this library (npm install @opentelemetry/api), ' +
        'or the option left out, got set, but @opentelemetry/api could not be loaded.',
    );
  });
});
