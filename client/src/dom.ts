/** The element with this id, of this type; a missing one is a bug in index.html, so it throws. */
export function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`#${id} is missing or not a ${type.name}`);
  return el;
}

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text?: string): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

/** Restarts a CSS animation class, so that each change flashes even when the last flash still runs. */
export function restartClass(el: HTMLElement, remove: readonly string[], add: string): void {
  el.classList.remove(...remove);
  void el.offsetWidth; // forces a style recalculation between removal and re-adding
  el.classList.add(add);
}
