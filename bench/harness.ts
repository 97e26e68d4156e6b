/**
 * A small throughput harness: each scenario runs for a fixed time at a fixed concurrency, and is
 * reported beside the baseline of its group, measured in the same run, as a ratio.
 */

/** One thing to measure. `run(i)` is called with a running counter (use it to pick a key). */
export interface Scenario {
  name: string;
  /** Scenarios of a group are compared with the group's baseline. */
  group: string;
  baseline?: boolean;
  run(i: number): Promise<unknown>;
}

export interface Measurement {
  scenario: Scenario;
  concurrency: number;
  opsPerSecond: number;
}

export interface BenchSettings {
  seconds: number;
  warmupSeconds: number;
  concurrencies: readonly number[];
  /** How many turns each measurement is split into. */
  rounds: number;
}

/** Runs `concurrency` workers, each awaiting `run` in a loop, for `seconds`; returns the operations done and the time taken. */
export async function measure(scenario: Scenario, concurrency: number, seconds: number): Promise<{ operations: number; seconds: number }> {
  let next = 0;
  let done = 0;
  const deadline = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      await scenario.run(next++);
      done++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { operations: done, seconds: (performance.now() - started) / 1000 };
}

/**
 * Measures every scenario at each concurrency. The time of a measurement is split into `rounds`
 * that take turns with the other scenarios, so a slow phase of the machine (another process, a
 * GC of the server) weighs on every scenario alike instead of on whichever ran then.
 */
export async function runAll(scenarios: readonly Scenario[], settings: BenchSettings): Promise<Measurement[]> {
  const results: Measurement[] = [];
  for (const concurrency of settings.concurrencies) {
    for (const scenario of scenarios) await measure(scenario, concurrency, settings.warmupSeconds);
    const totals = scenarios.map(() => ({ operations: 0, seconds: 0 }));
    for (let round = 0; round < settings.rounds; round++) {
      for (const [index, scenario] of scenarios.entries()) {
        const { operations, seconds } = await measure(scenario, concurrency, settings.seconds / settings.rounds);
        totals[index].operations += operations;
        totals[index].seconds += seconds;
      }
    }
    scenarios.forEach((scenario, index) => results.push({ scenario, concurrency, opsPerSecond: totals[index].operations / totals[index].seconds }));
  }
  return results;
}

/** A table: scenario, concurrency, ops/s, and the ratio to its group's baseline at that concurrency. */
export function report(results: readonly Measurement[]): string {
  const baselineOf = (m: Measurement) =>
    results.find((other) => other.scenario.group === m.scenario.group && other.scenario.baseline && other.concurrency === m.concurrency);
  const rows = results.map((m) => {
    const baseline = baselineOf(m);
    const ratio = baseline ? (m.opsPerSecond / baseline.opsPerSecond).toFixed(2) + 'x' : '-';
    return [m.scenario.group, m.scenario.name + (m.scenario.baseline ? ' (baseline)' : ''), String(m.concurrency), Math.round(m.opsPerSecond).toLocaleString('en-US'), ratio];
  });
  return table(['group', 'scenario', 'concurrency', 'ops/s', 'vs baseline'], rows, 2);
}

/** A plain-text table; columns from `firstNumeric` on are right-aligned. */
export function table(header: string[], rows: string[][], firstNumeric: number): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) => cells.map((cell, column) => (column >= firstNumeric ? cell.padStart(widths[column]) : cell.padEnd(widths[column]))).join('  ');
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}

/** The value below which `fraction` of the sorted samples fall. */
export function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN;
}
