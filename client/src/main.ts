import './style.css';
import { fetchCandles, fetchCandlesFrom, fetchPairs } from './api';
import { setupCards } from './cards.view';
import { DEFAULT_RANGE, isChartRange, RANGE_CANDLES, type ChartRange } from './chart-range';
import { setupChart, type ChartMode } from './chart.view';
import { setupListOptions, setupTransportPicker } from './controls.view';
import { byId } from './dom';
import { plural } from './format';
import { setupNotice } from './notice.view';
import { PairBook, selectRows } from './pair-book';
import { ResumeFilter } from './resume-filter';
import { setupStatus } from './status.view';
import { applyTheme, isTheme, loadTheme, saveTheme } from './theme-choice';
import { loadTransport, saveTransport } from './transport-choice';
import { backoffDelay, connect, DEFAULT_BACKOFF } from '@price-stream/client';

const storage = (): Storage | null => {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
};

/** /api/pairs, retried with the same backoff as the streams while the server is unreachable. */
async function loadBook(onRetry: (delayMs: number) => void): Promise<PairBook> {
  for (let attempt = 1; ; attempt++) {
    try {
      return new PairBook((await fetchPairs()).pairs);
    } catch {
      const delay = backoffDelay(attempt, DEFAULT_BACKOFF);
      onRetry(delay);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

async function main(): Promise<void> {
  let kind = loadTransport(storage());
  const theme = loadTheme(storage());
  applyTheme(document.documentElement, theme);
  const status = setupStatus(byId('status', HTMLElement), byId('age', HTMLElement), byId('freshness', HTMLElement));
  const notice = setupNotice(byId('notice', HTMLElement));
  const chart = setupChart(byId('chart', HTMLDivElement), byId('chart-title', HTMLElement));
  const themeSelect = byId('theme', HTMLSelectElement);
  themeSelect.value = theme;
  themeSelect.addEventListener('change', () => {
    if (!isTheme(themeSelect.value)) return;
    saveTheme(storage(), themeSelect.value);
    applyTheme(document.documentElement, themeSelect.value);
    chart.retheme();
  });

  const book = await loadBook((delayMs) => status.show({ state: 'reconnecting', attempt: 0, delayMs, reason: 'pairs unavailable' }, kind));

  let chartRequest = 0;
  let range: ChartRange = DEFAULT_RANGE;
  const modeSelect = byId('chart-mode', HTMLSelectElement);
  const chartMode = (): ChartMode => (modeSelect.value === 'candles' ? 'candles' : 'line');
  chart.setMode(chartMode());
  const showChart = async (pair: string): Promise<void> => {
    const mine = ++chartRequest;
    cards.select(pair);
    chart.begin(pair, range);
    const { interval, limit } = RANGE_CANDLES[range];
    try {
      const res = await fetchCandles(pair, interval, limit);
      if (mine === chartRequest) chart.load(res.candles);
    } catch {
      if (mine === chartRequest) chart.load([], ' (candles unavailable)');
    }
  };
  modeSelect.addEventListener('change', () => chart.setMode(chartMode()));
  const rangeButtons = [...byId('chart-range', HTMLElement).querySelectorAll<HTMLButtonElement>('button[data-range]')];
  for (const button of rangeButtons) {
    button.addEventListener('click', () => {
      const next = button.dataset.range;
      if (!isChartRange(next) || next === range) return;
      range = next;
      for (const b of rangeButtons) b.setAttribute('aria-pressed', String(b === button));
      if (chart.pair !== null) void showChart(chart.pair);
    });
  }

  // Narrow screens: the controls fold behind one button.
  const controlsForm = byId('controls', HTMLFormElement);
  const controlsToggle = byId('controls-toggle', HTMLButtonElement);
  controlsToggle.addEventListener('click', () => {
    const open = controlsForm.dataset.open !== 'true';
    controlsForm.dataset.open = String(open);
    controlsToggle.setAttribute('aria-expanded', String(open));
  });

  const cards = setupCards(byId('cards', HTMLUListElement), byId('no-match', HTMLElement), (pair) => void showChart(pair));
  const options = setupListOptions(byId('controls', HTMLFormElement), byId('filter', HTMLInputElement), byId('sort', HTMLSelectElement), () =>
    arrange(),
  );
  const arrange = (): void => {
    const { query, sort } = options.read();
    cards.arrange(selectRows(book.all(), query, sort));
  };
  arrange();

  // The 24 h change of a pair whose ticks carry no 24 h open: the price 24 hours ago by our candles.
  const loadChangeBases = async (): Promise<void> => {
    await Promise.all(
      book.pairs.map(async (pair) => {
        try {
          const res = await fetchCandlesFrom(pair, '5m', Date.now() - 24 * 3_600_000, 12);
          book.setCandlesOpen24h(pair, res.candles[0]?.open ?? null);
        } catch {
          // Left unknown: the card says so.
        }
      }),
    );
    arrange();
  };
  void loadChangeBases();
  setInterval(() => void loadChangeBases(), 10 * 60_000);

  const client = connect({ baseUrl: location.origin, transport: kind, pairs: book.pairs });
  const resumeFilter = new ResumeFilter();
  client.on('status', (s) => {
    resumeFilter.status(s);
    status.show(s, client.transport);
  });
  let resumes = 0;
  client.on('price', (tick, at) => {
    status.tickAt(at, tick.id);
    // The price's age when it arrived, on the server's clock: from the upstream's time when it gives one.
    const pricedAt = Date.parse(tick.sourceTimestamp ?? tick.timestamp);
    if (Number.isFinite(pricedAt)) status.freshness(at - (client.serverClockOffsetMs ?? 0) - pricedAt, resumes);
    const moved = book.apply(tick);
    const row = book.get(tick.pair);
    if (moved === null || !row) return;
    cards.update(row, moved);
    if (options.read().sort !== 'name') arrange();
    chart.push(tick);
  });
  client.on('freshness', (s) => cards.setStale(s.pair, s.state === 'stale' ? Date.parse(s.since) : null));
  client.on('reset', () => {
    notice.show('History had a gap: the server could not replay every missed tick. The chart was reloaded from history.', 'warning');
    if (chart.pair !== null) void showChart(chart.pair);
  });
  // Refused for good (e.g. a pair this server does not serve): the library has stopped retrying.
  client.on('error', (err) => notice.show(`The server refused the price stream (${err.code ?? err.status ?? 'no code'}): ${err.message}`, 'warning'));
  client.on('resumed', (missed) => {
    // A transport switch reconnects from the last id too; that is no resume to report.
    if (!resumeFilter.isResume()) return;
    resumes += 1;
    notice.show(missed === 0 ? 'Resumed from the last tick: nothing was missed.' : `Resumed from the last tick: ${plural(missed, 'missed tick', 'missed ticks')} recovered.`, 'info');
  });

  setupTransportPicker(byId('transport', HTMLSelectElement), kind, (next) => {
    kind = next;
    saveTransport(storage(), next);
    resumeFilter.switched();
    client.use(next);
  });

  // The first pair of PAIRS (the order /api/pairs keeps), the one the operator put first.
  const first = book.pairs[0];
  if (first !== undefined) void showChart(first);
  window.addEventListener('pagehide', () => client.close());
  // Back from the back/forward cache: connect again, resuming from the last id.
  window.addEventListener('pageshow', (e) => e.persisted && client.use(kind));
}

void main();
