import { applyTheme, loadTheme, saveTheme, THEME_KEY } from './theme-choice';

const memory = () => {
  const m = new Map<string, string>();
  return { getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v), m };
};

describe('theme choice', () => {
  it('follows the system until the reader picks a theme, then remembers it', () => {
    const store = memory();
    expect(loadTheme(store)).toBe('system');
    saveTheme(store, 'dark');
    expect(store.m.get(THEME_KEY)).toBe('dark');
    expect(loadTheme(store)).toBe('dark');
  });

  it('falls back to the system for an unknown value or a storage that throws', () => {
    const store = memory();
    store.setItem(THEME_KEY, 'purple');
    expect(loadTheme(store)).toBe('system');
    const broken = { getItem: () => { throw new Error('denied'); }, setItem: () => { throw new Error('denied'); } };
    expect(loadTheme(broken)).toBe('system');
    expect(() => saveTheme(broken, 'light')).not.toThrow();
  });

  it('sets data-theme for a manual choice and removes it for the system', () => {
    const root = { dataset: {} as Record<string, string | undefined> };
    applyTheme(root, 'light');
    expect(root.dataset.theme).toBe('light');
    applyTheme(root, 'system');
    expect(root.dataset.theme).toBeUndefined();
  });
});
