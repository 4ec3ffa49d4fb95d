import './style.css';
import { fetchCandles, fetchHistory, fetchPairs } from './api';
import { setupCards } from './cards.view';
import { CHART_CANDLES, setupChart, type ChartMode } from './chart.view';
import { setupListOptions, setupTransportPicker } from './controls.view';
import { byId } from './dom';
import { plural } from './format';
import { setupNotice } from './notice.view';
import { PairBook, selectRows } from './pair-book';
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
  const modeSelect = byId('chart-mode', HTMLSelectElement);
  const chartMode = (): ChartMode => (modeSelect.value === 'candles' ? 'candles' : 'line');
  const showChart = async (pair: string): Promise<void> => {
    const mine = ++chartRequest;
    const mode = chartMode();
    cards.select(pair);
    chart.begin(pair);
    try {
      if (mode === 'candles') {
        const res = await fetchCandles(pair, CHART_CANDLES.interval, CHART_CANDLES.limit);
        if (mine === chartRequest) chart.loadCandles(res.candles);
      } else {
        const history = await fetchHistory(pair);
        if (mine === chartRequest) chart.loadLine(history.updates);
      }
    } catch {
      if (mine !== chartRequest) return;
      if (mode === 'candles') chart.loadCandles([], ' (candles unavailable)');
      else chart.loadLine([], ' (history unavailable)');
    }
  };
  modeSelect.addEventListener('change', () => chart.pair !== null && void showChart(chart.pair));

  const cards = setupCards(byId('cards', HTMLUListElement), byId('no-match', HTMLElement), (pair) => void showChart(pair));
  const options = setupListOptions(byId('controls', HTMLFormElement), byId('filter', HTMLInputElement), byId('sort', HTMLSelectElement), () =>
    arrange(),
  );
  const arrange = (): void => {
    const { query, sort } = options.read();
    cards.arrange(selectRows(book.all(), query, sort));
  };
  arrange();

  const client = connect({ baseUrl: location.origin, transport: kind, pairs: book.pairs });
  client.on('status', (s) => status.show(s, client.transport));
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
  client.on('reset', () => {
    notice.show('History had a gap: the server could not replay every missed tick. The chart was reloaded from history.', 'warning');
    if (chart.pair !== null) void showChart(chart.pair);
  });
  // Refused for good (e.g. a pair this server does not serve): the library has stopped retrying.
  client.on('error', (err) => notice.show(`The server refused the price stream (${err.code ?? err.status ?? 'no code'}): ${err.message}`, 'warning'));
  client.on('resumed', (missed) => {
    resumes += 1;
    notice.show(missed === 0 ? 'Resumed from the last tick: nothing was missed.' : `Resumed from the last tick: ${plural(missed, 'missed tick', 'missed ticks')} recovered.`, 'info');
  });

  setupTransportPicker(byId('transport', HTMLSelectElement), kind, (next) => {
    kind = next;
    saveTransport(storage(), next);
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
