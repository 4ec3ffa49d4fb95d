export type NoticeKind = 'info' | 'warning';

/** One line of news about the stream (a resume, a history gap), in an aria-live region. */
export function setupNotice(el: HTMLElement) {
  return {
    show(text: string, kind: NoticeKind): void {
      el.dataset.kind = kind;
      el.textContent = text;
      el.hidden = false;
    },
  };
}
