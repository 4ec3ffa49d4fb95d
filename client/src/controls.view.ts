import { isSortKey, type SortKey } from './pair-book';
import type { Transport as TransportKind } from '@price-stream/client';
import { isTransportKind } from './transport-choice';

export type ListOptions = { query: string; sort: SortKey };

/** The filter box and the sort select; calls back on every change. */
export function setupListOptions(form: HTMLFormElement, filter: HTMLInputElement, sort: HTMLSelectElement, onChange: (o: ListOptions) => void) {
  const read = (): ListOptions => ({ query: filter.value, sort: isSortKey(sort.value) ? sort.value : 'name' });
  // Enter in the filter box must not submit (and reload) the page.
  form.addEventListener('submit', (e) => e.preventDefault());
  filter.addEventListener('input', () => onChange(read()));
  sort.addEventListener('change', () => onChange(read()));
  return { read };
}

/** The transport select, starting at the remembered choice. */
export function setupTransportPicker(select: HTMLSelectElement, initial: TransportKind, onChange: (kind: TransportKind) => void): void {
  select.value = initial;
  select.addEventListener('change', () => {
    if (isTransportKind(select.value)) onChange(select.value);
  });
}
