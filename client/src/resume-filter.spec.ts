import { ResumeFilter } from './resume-filter';

describe(ResumeFilter.name, () => {
  it('reports a resume after a lost connection', () => {
    const f = new ResumeFilter();
    f.status({ state: 'reconnecting', attempt: 1, delayMs: 500, reason: 'closed' });
    expect(f.isResume()).toBe(true);
  });

  it("does not report the resume a transport switch makes, and only that one", () => {
    const f = new ResumeFilter();
    f.switched();
    f.status({ state: 'connecting', attempt: 0 });
    f.status({ state: 'live' });
    expect(f.isResume()).toBe(false);
    expect(f.isResume()).toBe(true);
  });

  it('reports the resume when the connection was lost during the switch', () => {
    const f = new ResumeFilter();
    f.switched();
    f.status({ state: 'offline' });
    expect(f.isResume()).toBe(true);
  });
});
