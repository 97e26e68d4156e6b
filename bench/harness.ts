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

/** Which scenario a row is: its name, its group, and whether it is the group's baseline. */
export type ScenarioId = Pick<Scenario, 'name' | 'group' | 'baseline'>;

export interface Measurement {
  scenario: ScenarioId;
  concurrency: number;
  opsPerSecond: number;
  /** The median over the rounds of this scenario's ops/s divided by its baseline's in the same round. */
  ratio: number | undefined;
  /** The lowest and highest of those per-round ratios: how much the machine moved the row. */
  spread: [number, number] | undefined;
}

/** What one process measured of a scenario at one concurrency: its operations and time, and its rate in each round. */
export interface RoundRates {
  scenario: ScenarioId;
  concurrency: number;
  operations: number;
  seconds: number;
  /** Ops/s round by round, in the order the rounds ran (the same order for every scenario of a group). */
  rates: number[];
}

export interface BenchSettings {
  /** The time of one round of one measurement. */
  roundSeconds: number;
  warmupSeconds: number;
  concurrencies: readonly number[];
  /** How many rounds each measurement takes, in this process. */
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
 * Measures the scenarios of one group at each concurrency, in `rounds` that take turns with the
 * group's other scenarios, so a slow phase of the machine (another process, a GC of the server)
 * weighs on them alike. `progress` hears of each round.
 */
export async function measureRounds(
  scenarios: readonly Scenario[],
  settings: BenchSettings,
  progress: (step: string) => void = () => undefined,
): Promise<RoundRates[]> {
  const measured: RoundRates[] = [];
  for (const concurrency of settings.concurrencies) {
    for (const scenario of scenarios) await measure(scenario, concurrency, settings.warmupSeconds);
    const rows = scenarios.map(({ name, group, baseline }) => ({
      scenario: { name, group, baseline },
      concurrency,
      operations: 0,
      seconds: 0,
      rates: [] as number[],
    }));
    for (let round = 0; round < settings.rounds; round++) {
      progress(`c=${concurrency}, round ${round + 1}/${settings.rounds}`);
      for (const [index, scenario] of scenarios.entries()) {
        const { operations, seconds } = await measure(scenario, concurrency, settings.roundSeconds);
        rows[index].operations += operations;
        rows[index].seconds += seconds;
        rows[index].rates.push(operations / seconds);
      }
    }
    measured.push(...rows);
  }
  return measured;
}

/**
 * The measurements of one group from the rounds of every process that measured it (each process's
 * rounds in the same order for every scenario): per scenario and concurrency, the median of the
 * per-round ratios to the group's baseline over all the rounds, with their lowest and highest.
 */
export function combineRounds(measured: readonly RoundRates[]): Measurement[] {
  const rows = new Map<string, RoundRates>();
  for (const { scenario, concurrency, operations, seconds, rates } of measured) {
    const id = `${scenario.group}\u0000${scenario.name}\u0000${concurrency}`;
    const row = rows.get(id);
    if (row === undefined) {
      rows.set(id, { scenario, concurrency, operations, seconds, rates: [...rates] });
    } else {
      row.operations += operations;
      row.seconds += seconds;
      row.rates.push(...rates);
    }
  }
  const all = [...rows.values()];
  return all.map(({ scenario, concurrency, operations, seconds, rates }) => {
    const base = all.find((row) => row.scenario.baseline && row.scenario.group === scenario.group && row.concurrency === concurrency);
    return {
      scenario,
      concurrency,
      opsPerSecond: operations / seconds,
      ...(base === undefined ? { ratio: undefined, spread: undefined } : roundRatio(rates, base.rates)),
    };
  });
}

/** A table: scenario, concurrency, ops/s, the median ratio to its group's baseline at that concurrency, and the rounds' spread. */
export function report(results: readonly Measurement[]): string {
  const rows = results.map((m) => [
    m.scenario.group,
    m.scenario.name + (m.scenario.baseline ? ' (baseline)' : ''),
    String(m.concurrency),
    Math.round(m.opsPerSecond).toLocaleString('en-US'),
    m.ratio === undefined ? '-' : `${m.ratio.toFixed(2)}x`,
    m.spread === undefined || m.scenario.baseline ? '' : `${m.spread[0].toFixed(2)}-${m.spread[1].toFixed(2)}`,
  ]);
  return table(['group', 'scenario', 'concurrency', 'ops/s', 'vs baseline', 'rounds'], rows, 2);
}

/**
 * How `measured` compares with `base`, both measured in the same rounds (ops/s, round by round):
 * the median of the per-round ratios, and the lowest and highest of them.
 * @example
 * roundRatio([90, 120, 100], [100, 100, 50]); // { ratio: 1.2, spread: [0.9, 2] }
 */
export function roundRatio(measured: readonly number[], base: readonly number[]): { ratio: number; spread: [number, number] } {
  const ratios = measured.map((rate, round) => rate / base[round]);
  return { ratio: median(ratios), spread: [Math.min(...ratios), Math.max(...ratios)] };
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** A plain-text table; columns from `firstNumeric` on are right-aligned. */
export function table(header: string[], rows: string[][], firstNumeric: number): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) =>
    cells.map((cell, column) => (column >= firstNumeric ? cell.padStart(widths[column]) : cell.padEnd(widths[column]))).join('  ');
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}

/** The value below which `fraction` of the sorted samples fall. */
export function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN;
}

/** A run of messages or requests: how many per second, and each one's latency (ms). */
export interface MessageRun {
  perSecond: number;
  latencies: number[];
}

/** A table row for a message run: rate, p50 and p99 latency, and the rate as a ratio to `baseline`'s. */
export function messageRow(group: string, name: string, result: MessageRun, baseline: MessageRun): string[] {
  const sorted = [...result.latencies].sort((a, b) => a - b);
  const fmt = (ms: number) => (Number.isNaN(ms) ? '-' : ms.toFixed(2));
  return [
    group,
    name,
    Math.round(result.perSecond).toLocaleString('en-US'),
    fmt(percentile(sorted, 0.5)),
    fmt(percentile(sorted, 0.99)),
    `${(result.perSecond / baseline.perSecond).toFixed(2)}x`,
  ];
}
