import { writeFileSync } from 'node:fs';
import type { Measurement } from './harness.js';

/** Who a row measures: this library, a peer library doing the same job, or hand-written ioredis. */
export type RowKind = 'ours' | 'peer' | 'raw';

/** One measured row, whatever report it came from: its ratio to its group's baseline at one concurrency. */
export interface RatioRow {
  group: string;
  name: string;
  concurrency: number;
  ratio: number;
  /** The lowest and highest ratio over the rounds, when measured in rounds. */
  spread?: [number, number];
}

/** The peers' names as the scenarios spell them. */
const PEER = /bentocache|cache-manager|rate-limiter-flexible|throttler|redlock|connect-redis|redis-rank|bullmq/i;
const RAW = /\braw\b|baseline/i;
/** Ours plugged into a peer (cache-manager over RedisKeyvStore, @nestjs/throttler's guard on RedisThrottlerStorage) is a row of ours. */
const OURS_IN_A_PEER = /RedisKeyvStore|RedisThrottlerStorage/;

export function kindOf(name: string): RowKind {
  if (OURS_IN_A_PEER.test(name)) return 'ours';
  if (PEER.test(name)) return 'peer';
  return RAW.test(name) ? 'raw' : 'ours';
}

export function ratioRows(measurements: readonly Measurement[]): RatioRow[] {
  return measurements.flatMap(({ scenario, concurrency, ratio, spread }) =>
    ratio === undefined || scenario.baseline ? [] : [{ group: scenario.group, name: scenario.name, concurrency, ratio, spread }],
  );
}

/** A scenario with its ratios by concurrency. */
interface Line {
  group: string;
  name: string;
  kind: RowKind;
  byConcurrency: Map<number, RatioRow>;
}

function lines(rows: readonly RatioRow[]): Line[] {
  const found = new Map<string, Line>();
  for (const row of rows) {
    const id = `${row.group}\u0000${row.name}`;
    const line = found.get(id) ?? { group: row.group, name: row.name, kind: kindOf(row.name), byConcurrency: new Map() };
    line.byConcurrency.set(row.concurrency, row);
    found.set(id, line);
  }
  return [...found.values()];
}

const ratioText = (row: RatioRow | undefined) => (row === undefined ? '' : `${row.ratio.toFixed(2)}x`);

/**
 * Every row of ours, each with the best peer of its group beside it (by the ratio at the highest
 * concurrency), as a Markdown table; ratios are to the group's hand-written baseline.
 */
export function markdownSummary(rows: readonly RatioRow[]): string {
  const all = lines(rows);
  const concurrencies = [...new Set(rows.map((row) => row.concurrency))].sort((a, b) => a - b);
  const top = concurrencies.at(-1) ?? 64;
  const header = [
    'group',
    'ours',
    ...concurrencies.map((c) => `c=${c}`),
    'best peer in the same run',
    ...concurrencies.map((c) => `c=${c}`),
  ];
  const table = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const line of all.filter(({ kind }) => kind === 'ours')) {
    const peers = all.filter(({ group, kind }) => group === line.group && kind === 'peer');
    const best = peers.sort((a, b) => (b.byConcurrency.get(top)?.ratio ?? 0) - (a.byConcurrency.get(top)?.ratio ?? 0))[0];
    const cells = [
      line.group,
      `\`${line.name}\``,
      ...concurrencies.map((c) => ratioText(line.byConcurrency.get(c))),
      best === undefined ? '(none)' : best.name,
      ...concurrencies.map((c) => (best === undefined ? '' : ratioText(best.byConcurrency.get(c)))),
    ];
    table.push(`| ${cells.join(' | ')} |`);
  }
  return table.join('\n');
}

const COLORS: Record<RowKind, string> = { ours: '#2563eb', peer: '#9ca3af', raw: '#d1d5db' };
/** The ratio at the right edge of the chart; longer bars are cut there and labelled. */
const AXIS_MAX = 2;

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * A bar chart (SVG) of every group that has a peer: one bar per scenario at `concurrency`, its
 * ratio to the group's hand-written baseline (the line at 1.0x), ours in blue, peers in grey.
 */
export function svgChart(rows: readonly RatioRow[], concurrency = 64): string {
  const shown = lines(rows).filter((line) => line.byConcurrency.has(concurrency) && line.kind !== 'raw');
  const groups = [...new Set(shown.map((line) => line.group))].filter((group) =>
    shown.some((line) => line.group === group && line.kind === 'peer'),
  );
  const [labelWidth, barWidth, rowHeight, groupGap] = [430, 360, 18, 26];
  const scale = (ratio: number) => (Math.min(ratio, AXIS_MAX) / AXIS_MAX) * barWidth;
  const parts: string[] = [];
  let y = 40;
  for (const group of groups) {
    parts.push(`<text x="4" y="${y}" font-weight="bold">${escapeXml(group)}</text>`);
    y += 6;
    for (const line of shown.filter((candidate) => candidate.group === group)) {
      const { ratio } = line.byConcurrency.get(concurrency)!;
      const width = scale(ratio);
      parts.push(
        `<text x="${labelWidth - 6}" y="${y + 13}" text-anchor="end">${escapeXml(line.name.slice(0, 64))}</text>`,
        `<rect x="${labelWidth}" y="${y + 2}" width="${width.toFixed(1)}" height="${rowHeight - 4}" fill="${COLORS[line.kind]}"/>`,
        `<text x="${labelWidth + width + 4}" y="${y + 13}">${ratio.toFixed(2)}x${ratio > AXIS_MAX ? ' ›' : ''}</text>`,
      );
      y += rowHeight;
    }
    y += groupGap;
  }
  const height = y;
  const one = labelWidth + scale(1);
  const width = labelWidth + barWidth + 70;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="4" y="16" font-size="13" font-weight="bold">At c=${concurrency}, as a ratio to hand-written ioredis (line: 1.00x)</text>`,
    `<text x="4" y="30" font-size="10" fill="#6b7280">Throughput; in "CPU per request" groups, the raw route's CPU over the row's</text>`,
    `<text x="${labelWidth}" y="30" fill="${COLORS.ours}">■ nestjs-redis-patterns</text><text x="${labelWidth + 160}" y="30" fill="#6b7280">■ peer library</text>`,
    `<line x1="${one}" y1="34" x2="${one}" y2="${height - 10}" stroke="#ef4444" stroke-dasharray="3 3"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

/** Writes the chart and the table beside the bench (bench/results.svg, bench/results.md). */
export function writeSummary(rows: readonly RatioRow[], directory: URL): void {
  writeFileSync(new URL('results.svg', directory), svgChart(rows));
  writeFileSync(new URL('results.md', directory), `${markdownSummary(rows)}\n`);
}
