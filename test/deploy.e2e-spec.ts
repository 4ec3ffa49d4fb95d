import fs from 'fs';
import path from 'path';
import yaml from 'js-yaml';

/**
 * The shipped deployment files, read as what docker and compose will do with them (no Docker
 * engine runs the tests; .ci/run's steps build and start the same way).
 */
const root = path.join(__dirname, '..');
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');

type Service = { environment?: Record<string, string>; ulimits?: { nofile?: { soft: number; hard: number } }; depends_on?: Record<string, { condition: string }> | string[] };
/** compose.yaml with its `<<: *price-stream` merge keys applied, as compose applies them. */
const compose = (): { services: Record<string, Service> } => {
  const doc = yaml.load(read('compose.yaml')) as { services: Record<string, Service & { '<<'?: Service }> };
  const services = Object.fromEntries(Object.entries(doc.services).map(([name, { '<<': base, ...own }]) => [name, { ...base, ...own }]));
  return { services };
};

describe('the image (Dockerfile, .dockerignore)', () => {
  const dockerfile = read('Dockerfile');
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));

  it('leaves the app files to root, read-only for the node user', () => {
    expect(runtime).not.toMatch(/--chown/);
    expect(runtime).toMatch(/^RUN chmod -R u=rwX,go=rX \/app$/m);
    expect(runtime.indexOf('USER node')).toBeGreaterThan(runtime.indexOf('chmod'));
  });

  it('runs under tini as PID 1', () => {
    expect(runtime).toMatch(/apt-get install -y --no-install-recommends tini/);
    expect(runtime).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--"\]$/m);
  });

  it('keeps bench/ out of the build context and the build', () => {
    expect(read('.dockerignore').split('\n')).toContain('bench');
    expect(dockerfile).not.toMatch(/npm run build(?!:)/);
  });

  it('gives npm ci the manifest of every workspace (the client library) before it runs', () => {
    const pkg = JSON.parse(read('package.json')) as { workspaces?: string[] };
    const ci = dockerfile.indexOf('RUN npm ci');
    for (const ws of pkg.workspaces ?? []) {
      const copy = dockerfile.indexOf(`COPY ${ws}/package.json ./${ws}/`);
      expect(copy).toBeGreaterThan(-1);
      expect(copy).toBeLessThan(ci);
    }
    expect(pkg.workspaces).toEqual(['packages/client']);
  });

  it('builds and runs on Node 24, the LTS CI tests on', () => {
    expect(dockerfile.match(/^FROM .*$/gm)).toEqual(['FROM node:24-bookworm-slim AS build', 'FROM node:24-bookworm-slim']);
  });

  it('labels the image (OCI source, version, revision) from build arguments, and passes the revision to the build', () => {
    for (const label of ['source', 'version', 'revision']) expect(runtime).toMatch(new RegExp(`org\\.opencontainers\\.image\\.${label}="\\$\\{[A-Z_]+\\}"`));
    const build = dockerfile.slice(0, dockerfile.lastIndexOf('\nFROM '));
    expect(build).toMatch(/^ARG GIT_REVISION/m);
    expect(build).toMatch(/GIT_REVISION=\$\{GIT_REVISION\} node scripts\/write-build-info\.mjs/);
  });

  it('keeps tests, bench and docs out of the build context', () => {
    const ignored = read('.dockerignore').split('\n');
    for (const dir of ['test', 'bench', 'docs', '.git', 'node_modules']) expect(ignored).toContain(dir);
  });

  it('ships no test tooling as a production dependency', () => {
    const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    expect(Object.keys(pkg.dependencies).filter((d) => /jest|eslint|@types\//.test(d))).toEqual([]);
  });
});

describe('compose.yaml', () => {
  it('trusts exactly one proxy (nginx), never every X-Forwarded-For entry', () => {
    for (const name of ['app1', 'app2']) expect(compose().services[name].environment?.TRUST_PROXY).toBe('1');
  });

  it('raises nofile above MAX_STREAM_CONNECTIONS for the replicas, and for nginx', () => {
    const { services } = compose();
    for (const name of ['app1', 'app2']) {
      const max = Number(services[name].environment?.MAX_STREAM_CONNECTIONS ?? 19000);
      expect(services[name].ulimits?.nofile?.soft).toBeGreaterThan(max);
    }
    expect(services.nginx.ulimits?.nofile?.soft).toBeGreaterThanOrEqual(2 * 20000);
  });

  it('starts nginx once the replicas are healthy', () => {
    expect(compose().services.nginx.depends_on).toEqual({ app1: { condition: 'service_healthy' }, app2: { condition: 'service_healthy' } });
  });

  it('passes COINDESK_API_KEY through and sets SHUTDOWN_DELAY_MS for an orchestrator', () => {
    const env = compose().services.app1.environment!;
    expect(env.COINDESK_API_KEY).toBe('${COINDESK_API_KEY:-}');
    expect(Number(env.SHUTDOWN_DELAY_MS)).toBe(5000);
  });
});
