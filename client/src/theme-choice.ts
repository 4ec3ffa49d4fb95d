import type { KeyValueStore } from './transport-choice';

export const THEME_KEY = 'price-stream.theme';
export type Theme = 'system' | 'light' | 'dark';
const THEMES: readonly Theme[] = ['system', 'light', 'dark'];

export const isTheme = (v: string | null): v is Theme => (THEMES as readonly (string | null)[]).includes(v);

/** The reader's manual choice, or `system` (follow prefers-color-scheme) when none was made. */
export function loadTheme(store: KeyValueStore | null): Theme {
  try {
    const v = store?.getItem(THEME_KEY) ?? null;
    return isTheme(v) ? v : 'system';
  } catch {
    return 'system';
  }
}

export function saveTheme(store: KeyValueStore | null, theme: Theme): void {
  try {
    store?.setItem(THEME_KEY, theme);
  } catch {
    // Not remembered; the choice still applies to this page.
  }
}

/** `data-theme` on the root element picks the palette in style.css; without it the system decides. */
export function applyTheme(root: { dataset: DOMStringMap }, theme: Theme): void {
  if (theme === 'system') delete root.dataset.theme;
  else root.dataset.theme = theme;
}
