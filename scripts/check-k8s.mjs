// CI check of deploy/k8s (docs/operations.md, "Deploying on Kubernetes"). For the base and every
// overlay: renders it with `kubectl kustomize`, validates every object against the Kubernetes
// API schemas (the kubernetes-models packages' JSON schemas), and checks the Deployment against
// the service itself: the probes' paths answered by a running `node dist/main.js` (build first),
// their port the container's, the container port the service's PORT, the grace period above
// SHUTDOWN_DELAY_MS + SHUTDOWN_TIMEOUT_MS, the security context, resources, and that the
// Service, PDB and HPA point at it. Exits 1 with every problem listed.
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAll } from 'js-yaml';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const k8s = join(root, 'deploy', 'k8s');
const targets = ['base', ...readdirSync(join(k8s, 'overlays')).map((o) => join('overlays', o))];
const problems = [];
const fail = (where, msg) => problems.push(`${where}: ${msg}`);

function render(target) {
  return loadAll(execFileSync('kubectl', ['kustomize', join(k8s, target)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })).filter(Boolean);
}

async function validate(where, obj) {
  let models;
  try {
    models = await import(`kubernetes-models/${obj.apiVersion}`);
  } catch {
    return fail(where, `no Kubernetes schema for apiVersion ${obj.apiVersion}`);
  }
  const Model = models[obj.kind];
  if (!Model) return fail(where, `no Kubernetes schema for ${obj.apiVersion} ${obj.kind}`);
  try {
    new Model(obj).validate();
  } catch (err) {
    fail(where, `invalid ${obj.kind}: ${err.message}`);
  }
}

const matches = (selector = {}, labels = {}) => Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Static checks of one rendered Deployment; returns the probes to try on the running service. */
function checkDeployment(where, d, objects, config) {
  const pod = d.spec.template;
  const c = pod.spec.containers[0];
  const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e]));
  const value = (name) => env[name]?.value;
  const port = Number(value('PORT') ?? config.port);
  const http = (c.ports ?? []).find((p) => p.name === 'http');
  if (!http) fail(where, 'the container has no port named http');
  else if (http.containerPort !== port) fail(where, `containerPort ${JSON.stringify(http.containerPort)} is not the service's PORT ${port}`);
  const probes = [];
  for (const kind of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
    const probe = c[kind]?.httpGet;
    if (!probe) {
      fail(where, `no ${kind} with httpGet`);
      continue;
    }
    if (probe.port !== 'http' && probe.port !== port) fail(where, `${kind} port ${probe.port} is not the container's http port`);
    if (!(c[kind].timeoutSeconds >= 1)) fail(where, `${kind} has no timeoutSeconds`);
    probes.push({ kind, path: probe.path });
  }
  if (c.readinessProbe?.httpGet?.path === c.livenessProbe?.httpGet?.path) fail(where, 'liveness and readiness probe the same path (a dead upstream would restart the pods)');
  const delayMs = Number(value('SHUTDOWN_DELAY_MS') ?? config.shutdownDelayMs);
  const timeoutMs = Number(value('SHUTDOWN_TIMEOUT_MS') ?? config.shutdownTimeoutMs);
  const grace = pod.spec.terminationGracePeriodSeconds ?? 30;
  if (grace * 1000 <= delayMs + timeoutMs) fail(where, `terminationGracePeriodSeconds ${grace} s is not above SHUTDOWN_DELAY_MS + SHUTDOWN_TIMEOUT_MS = ${(delayMs + timeoutMs) / 1000} s`);
  if (delayMs <= 0) fail(where, 'SHUTDOWN_DELAY_MS is not set: endpoints would still route to a stopping pod');
  const podSc = pod.spec.securityContext ?? {};
  const sc = c.securityContext ?? {};
  if (podSc.runAsNonRoot !== true && sc.runAsNonRoot !== true) fail(where, 'not runAsNonRoot');
  if (sc.readOnlyRootFilesystem !== true) fail(where, 'root filesystem not read-only');
  if (sc.allowPrivilegeEscalation !== false) fail(where, 'privilege escalation not disabled');
  if (!(sc.capabilities?.drop ?? []).includes('ALL')) fail(where, 'capabilities not all dropped');
  for (const r of ['requests', 'limits']) for (const k of ['cpu', 'memory']) if (!c.resources?.[r]?.[k]) fail(where, `no resources.${r}.${k}`);
  if ((d.spec.replicas ?? 1) > 1 && !env.REDIS_URL) fail(where, 'several replicas without REDIS_URL: each would number its own ticks');
  if (env.REDIS_URL && !env.REDIS_URL.valueFrom?.secretKeyRef) fail(where, 'REDIS_URL is not taken from a Secret');
  const labels = pod.metadata.labels;
  if (!matches(d.spec.selector.matchLabels, labels)) fail(where, 'the Deployment selector does not match its pods');
  for (const o of objects) {
    if (o.kind === 'Service') {
      if (!matches(o.spec.selector, labels)) fail(where, `Service ${o.metadata.name} does not select the pods`);
      for (const p of o.spec.ports) if (p.targetPort !== 'http' && p.targetPort !== port) fail(where, `Service port ${p.name} targets ${p.targetPort}, not the container's http port`);
    }
    if (o.kind === 'PodDisruptionBudget' && !matches(o.spec.selector.matchLabels, labels)) fail(where, `PodDisruptionBudget ${o.metadata.name} does not select the pods`);
    if (o.kind === 'HorizontalPodAutoscaler' && (o.spec.scaleTargetRef.kind !== 'Deployment' || o.spec.scaleTargetRef.name !== d.metadata.name)) fail(where, 'the HorizontalPodAutoscaler targets another object');
    if (o.kind === 'Ingress')
      for (const rule of o.spec.rules ?? [])
        for (const p of rule.http.paths) if (!objects.some((s) => s.kind === 'Service' && s.metadata.name === p.backend.service.name)) fail(where, `Ingress backend ${p.backend.service.name} is no Service here`);
  }
  return probes;
}

function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Every probe path must answer 200 on the running service (readiness once it has a price). */
async function checkProbesLive(probes) {
  const main = join(root, 'dist', 'main.js');
  if (!existsSync(main)) return fail('probes', 'dist/main.js missing: run `npm run build` first');
  const port = await freePort();
  const proc = spawn(process.execPath, [main], { env: { PATH: process.env.PATH, PORT: String(port), HOST: '127.0.0.1', PRICE_SOURCES: 'simulated', LOG_LEVEL: 'warn' }, stdio: 'ignore' });
  try {
    for (const { kind, path, where } of probes) {
      const deadline = Date.now() + 45_000;
      let status = 0;
      while (Date.now() < deadline) {
        status = await fetch(`http://127.0.0.1:${port}${path}`).then((r) => r.status, () => 0);
        if (status === 200) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      if (status !== 200) fail(where, `${kind} ${path} answers ${status || 'nothing'} on the running service, not 200`);
    }
  } finally {
    proc.kill('SIGTERM');
  }
}

const config = require(join(root, 'dist', 'config', 'app-config.js')).loadConfig({});
const probes = [];
for (const target of targets) {
  let objects;
  try {
    objects = render(target);
  } catch (err) {
    fail(target, `kubectl kustomize failed: ${err.stderr || err.message}`);
    continue;
  }
  for (const o of objects) await validate(`${target} ${o.kind}/${o.metadata?.name}`, o);
  const deployments = objects.filter((o) => o.kind === 'Deployment');
  if (deployments.length !== 1) fail(target, `${deployments.length} Deployments rendered, expected 1`);
  for (const d of deployments) for (const p of checkDeployment(`${target} Deployment/${d.metadata.name}`, d, objects, config)) probes.push({ ...p, where: `${target} Deployment/${d.metadata.name}` });
  console.log(`${target}: ${objects.length} objects (${objects.map((o) => o.kind).join(', ')})`);
}
await checkProbesLive(probes);
if (problems.length > 0) {
  console.error(problems.map((p) => `  - ${p}`).join('\n'));
  process.exit(1);
}
console.log(`deploy/k8s: ${targets.length} kustomizations rendered and valid; probes ${[...new Set(probes.map((p) => p.path))].join(', ')} answer 200`);
