// The dashboard's page script, served as it is (no build step). uPlot is a global from uPlot.iife.min.js.
// Every second GET /dashboard/stream sends an update (see DashboardUpdate in sample/dashboard.service.ts).

const HISTORY_SECONDS = 60;
const COLORS = { green: '#34d399', blue: '#60a5fa', red: '#f87171', violet: '#a78bfa', amber: '#fbbf24', cyan: '#22d3ee' };

const integer = new Intl.NumberFormat('en');
const decimal = new Intl.NumberFormat('en', { maximumFractionDigits: 1 });
const count = (value) => integer.format(value);
const percent = (ratio) => `${decimal.format(ratio * 100)}%`;
const millis = (ms) => (ms === null ? '–' : ms < 10 ? `${ms.toFixed(2)} ms` : `${decimal.format(ms)} ms`);
const optional = (value) => (value === null ? '–' : count(value));
function bytes(value) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) [value, unit] = [value / 1024, unit + 1];
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** A number: its data-metric name, how to read it from an update, how to show it. */
const metric = (name, read, format) => ({ name, read, format });

/**
 * The cards, in the grid's order (the top 10 is in the page): the big number, the facts below it
 * (label and number), and the chart's lines.
 */
const CARDS = [
  {
    title: 'Cache hit ratio',
    note: 'CacheService.stats()',
    big: metric('cache-hit-ratio', (u) => u.cache.hitRatio, percent),
    facts: [
      ['hits', metric('cache-hits', (u) => u.cache.hits, count)],
      ['lookups', metric('cache-lookups', (u) => u.cache.lookups, count)],
    ],
    chart: 'cache',
    lines: [{ label: 'hit ratio %', color: COLORS.green, read: (u) => u.cache.hitRatio * 100 }],
  },
  {
    title: 'Rate limiting',
    note: 'requests limited',
    big: metric('ratelimit-limited', (u) => u.rateLimit.limited, count),
    facts: [
      ['allowed', metric('ratelimit-allowed', (u) => u.rateLimit.allowed, count)],
      ['unchecked', metric('ratelimit-unchecked', (u) => u.rateLimit.unchecked, count)],
      ['unavailable', metric('ratelimit-unavailable', (u) => u.rateLimit.unavailable, count)],
    ],
    chart: 'ratelimit',
    lines: [
      { label: 'allowed/s', color: COLORS.blue, read: (u) => u.perSecond.allowed },
      { label: 'limited/s', color: COLORS.red, read: (u) => u.perSecond.limited },
    ],
  },
  {
    title: 'Lock waits',
    note: 'mean wait',
    big: metric('locks-wait-mean', (u) => u.locks.meanWaitMs, millis),
    facts: [
      ['p95 ≤', metric('locks-wait-p95', (u) => u.locks.p95WaitMs, millis)],
      ['acquired', metric('locks-acquired', (u) => u.locks.acquired, count)],
      ['busy', metric('locks-busy', (u) => u.locks.busy, count)],
    ],
    chart: 'locks',
    lines: [{ label: 'acquired/s', color: COLORS.violet, read: (u) => u.perSecond.acquired }],
  },
  {
    title: 'Emails queue',
    note: 'jobs waiting',
    big: metric('queue-waiting', (u) => u.queue.waiting, count),
    facts: [
      ['active', metric('queue-active', (u) => u.queue.active, count)],
      ['delayed', metric('queue-delayed', (u) => u.queue.delayed, count)],
      ['dead', metric('queue-dead', (u) => u.queue.dead, count)],
      ['completed', metric('queue-completed', (u) => u.queue.completed, count)],
    ],
    chart: 'queue',
    lines: [
      { label: 'waiting', color: COLORS.amber, read: (u) => u.queue.waiting },
      { label: 'delayed', color: COLORS.violet, read: (u) => u.queue.delayed },
      { label: 'completed/s', color: COLORS.green, read: (u) => u.perSecond.completed },
    ],
  },
  {
    title: 'Orders stream',
    note: 'fulfilment lag',
    big: metric('stream-lag', (u) => u.stream.lag, optional),
    facts: [
      ['pending', metric('stream-pending', (u) => u.stream.pending, count)],
      ['handled', metric('stream-handled', (u) => u.stream.handled, count)],
      ['dead-lettered', metric('stream-dead-lettered', (u) => u.stream.deadLettered, count)],
    ],
    chart: 'stream',
    lines: [
      { label: 'lag', color: COLORS.amber, read: (u) => u.stream.lag },
      { label: 'pending', color: COLORS.red, read: (u) => u.stream.pending },
      { label: 'handled/s', color: COLORS.green, read: (u) => u.perSecond.handled },
    ],
  },
  {
    title: 'Redis',
    note: 'memory used',
    big: metric('redis-memory', (u) => u.redis.usedMemoryBytes, bytes),
    facts: [['ops/s', metric('redis-ops', (u) => u.redis.opsPerSecond, count)]],
    chart: 'redis',
    lines: [{ label: 'ops/s', color: COLORS.cyan, read: (u) => u.redis.opsPerSecond }],
  },
];

const NUMBERS = CARDS.flatMap((card) => [card.big, ...card.facts.map(([, number]) => number)]);

/** `<tag class=...>` with children (elements or text). */
function element(tag, className, ...children) {
  const made = document.createElement(tag);
  if (className) made.className = className;
  made.append(...children);
  return made;
}

/** An element of `tag` that shows the number `name` (its data-metric), '–' until the first update. */
function numberElement(tag, className, name) {
  const made = element(tag, className, '–');
  made.dataset.metric = name;
  return made;
}

/** A card's markup: heading, big number, facts, and the box its chart is drawn in. */
function cardElement({ title, note, big, facts, chart }) {
  const chartBox = element('div', 'chart');
  chartBox.dataset.chart = chart;
  const factList = facts.map(([label, { name }]) => element('div', '', element('dt', '', label), numberElement('dd', '', name)));
  return element(
    'section',
    'card',
    element('h2', '', `${title} `, element('small', '', note)),
    numberElement('p', 'big', big.name),
    element('dl', 'facts', ...factList),
    chartBox,
  );
}

function show(metric, value, text) {
  for (const element of document.querySelectorAll(`[data-metric="${metric}"]`)) {
    // A change that shows (not every byte of memory) flashes; the first value does not.
    if (element.dataset.value !== undefined && element.textContent !== text) flash(element);
    element.dataset.value = value === null ? '' : String(value);
    element.textContent = text;
  }
}

function flash(element) {
  element.classList.add('changed');
  setTimeout(() => element.classList.remove('changed'), 150);
}

/** The top 10, built with textContent: a player's name is data, never markup. */
function showLeaderboard(entries) {
  const list = document.querySelector('[data-metric="leaderboard"]');
  list.replaceChildren(
    ...entries.map(({ rank, member, score }) => {
      const item = document.createElement('li');
      item.dataset.player = member;
      item.dataset.score = String(score);
      for (const [name, text] of [
        ['rank', String(rank)],
        ['name', member],
        ['score', count(score)],
      ]) {
        const cell = item.appendChild(document.createElement('span'));
        cell.className = name;
        cell.textContent = text;
      }
      return item;
    }),
  );
}

function chart(element, lines) {
  const axis = { stroke: '#7c8799', font: '11px system-ui, sans-serif', ticks: { show: false } };
  const options = {
    width: element.clientWidth,
    height: 96,
    legend: { show: false },
    cursor: { show: false },
    padding: [8, 4, 6, 0],
    scales: {
      // What there is of the last 60 s (the oldest points are dropped as new ones come).
      x: { time: true, range: (_, min, max) => [Math.min(min, max - 1), max] },
      y: { range: (_, __, max) => [0, Math.max(1, max * 1.2)] },
    },
    axes: [
      { ...axis, show: false },
      {
        ...axis,
        size: 38,
        grid: { stroke: 'rgba(148, 163, 184, 0.08)', width: 1 },
        values: (_, splits) => splits.map((v) => decimal.format(v)),
      },
    ],
    series: [{}, ...lines.map(({ label, color }) => ({ label, stroke: color, width: 2, fill: `${color}1f`, points: { show: false } }))],
  };
  const plot = new uPlot(options, [[], ...lines.map(() => [])], element);
  new ResizeObserver(() => plot.setSize({ width: element.clientWidth, height: 96 })).observe(element);
  const legend = element.insertAdjacentElement('afterend', document.createElement('ul'));
  legend.className = 'legend';
  for (const { label, color } of lines) {
    const item = legend.appendChild(document.createElement('li'));
    item.style.setProperty('--swatch', color);
    item.textContent = label;
  }
  return { plot, lines, data: [[], ...lines.map(() => [])] };
}

const cards = CARDS.map((card) => ({ card, box: cardElement(card) }));
document.querySelector('.grid').prepend(...cards.map(({ box }) => box));
const charts = cards.map(({ card, box }) => chart(box.querySelector('.chart'), card.lines));

function extendCharts(update) {
  for (const { plot, lines, data } of charts) {
    data[0].push(update.at / 1000);
    lines.forEach((line, i) => data[i + 1].push(line.read(update)));
    while (data[0][0] < update.at / 1000 - HISTORY_SECONDS) for (const points of data) points.shift();
    plot.setData(data);
  }
}

const status = document.querySelector('[data-metric="status"]');
function setStatus(state, text) {
  status.className = `status ${state}`;
  status.querySelector('.text').textContent = text;
}

const source = new EventSource('/dashboard/stream');
source.addEventListener('open', () => setStatus('live', 'live'));
source.addEventListener('error', () => setStatus('down', 'reconnecting…'));
source.addEventListener('message', (event) => {
  const update = JSON.parse(event.data);
  if (update.error) return setStatus('down', `Redis unavailable: ${update.error}`);
  for (const { name, read, format } of NUMBERS) {
    const value = read(update);
    show(name, value, format(value));
  }
  showLeaderboard(update.leaderboard);
  extendCharts(update);
  status.dataset.updates = String(Number(status.dataset.updates) + 1);
  setStatus('live', `live · ${new Date(update.at).toLocaleTimeString('en-GB')}`);
});
