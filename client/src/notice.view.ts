export type NoticeKind = 'info' | 'warning';

/** One line of news about the stream (a resume, a history gap), in an aria-live region. */
export function setupNotice(el: HTMLElement) {
  // Counts the notices shown, so that a reader (the end-to-end test) can tell a new one from an old one with the same text.
  let shown = 0;
  return {
    show(text: string, kind: NoticeKind): void {
      el.dataset.seq = String(++shown);
      el.dataset.kind = kind;
      el.textContent = text;
      el.hidden = false;
    },
  };
}
