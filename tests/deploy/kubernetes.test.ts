// The Kubernetes example (deploy/kubernetes/) against the Kubernetes API's
// schemas (kubernetes-models: each object built as its model and validated),
// and against what agentq needs of it: probes on the endpoints that exist,
// resources set, secrets referenced and never written down. Broken manifests
// must fail the same validation.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { Service } from 'kubernetes-models/v1/Service';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';

const DIR = path.resolve(import.meta.dirname, '../../deploy/kubernetes');

// Every kind the example uses; another kind fails the test until it is added here.
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apps/v1 Deployment': Deployment,
  'batch/v1 Job': Job,
  'v1 Service': Service,
};

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: Record<string, unknown>;
}

interface Container {
  name: string;
  command: string[];
  ports?: Array<{ name: string; containerPort: number }>;
  env: Array<{ name: string; value?: string; valueFrom?: unknown }>;
  readinessProbe?: { httpGet: { path: string; port: string } };
  livenessProbe?: { httpGet: { path: string; port: string } };
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
}

async function manifests(): Promise<Manifest[]> {
  const files = (await readdir(DIR)).filter((f) => /\.ya?ml$/.test(f));
  const docs: Manifest[] = [];
  for (const file of files) {
    for (const doc of parseAllDocuments(await readFile(path.join(DIR, file), 'utf8'))) {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0]!.message}`);
      if (doc.contents !== null) docs.push(doc.toJS() as Manifest);
    }
  }
  return docs;
}

/** Builds the object as its kubernetes-models model and validates it (throws on a violation). */
function validate(m: Manifest): void {
  const Model = MODELS[`${m.apiVersion} ${m.kind}`];
  if (!Model) throw new Error(`no model for ${m.apiVersion} ${m.kind}`);
  new Model(m as never).validate();
}

const containerOf = (m: Manifest) =>
  (m.spec.template as { spec: { containers: Container[] } }).spec.containers[0]!;

describe('deploy/kubernetes', () => {
  it('validates every object against the Kubernetes schemas', async () => {
    const all = await manifests();
    expect(all.map((m) => `${m.kind}/${m.metadata.name}`).sort()).toEqual([
      'Deployment/agentq-api',
      'Deployment/agentq-worker',
      'Job/agentq-migrate',
      'Service/agentq-api',
    ]);
    for (const m of all) expect(() => validate(m), `${m.kind}/${m.metadata.name}`).not.toThrow();
  });

  it('probes the endpoints agentq serves, sets resources, and only references its secrets', async () => {
    const all = await manifests();
    const byName = (kind: string, name: string) =>
      all.find((m) => m.kind === kind && m.metadata.name === name)!;
    const api = containerOf(byName('Deployment', 'agentq-api'));
    const worker = containerOf(byName('Deployment', 'agentq-worker'));
    const migrate = containerOf(byName('Job', 'agentq-migrate'));

    expect(api.command).toEqual(['node', 'dist/api/main.js']);
    expect(worker.command).toEqual(['node', 'dist/worker/main.js']);
    expect(migrate.command).toEqual(['node', 'dist/scripts/migrate.js']);
    const env = (c: Container) => Object.fromEntries(c.env.map((e) => [e.name, e]));
    // Probes name a container port, which serves them: the API's PORT, the worker's metrics port.
    expect(api.ports).toEqual([{ name: 'http', containerPort: 8080 }]);
    expect(env(api).PORT?.value).toBe('8080');
    expect(worker.ports).toEqual([{ name: 'metrics', containerPort: 9464 }]);
    expect(env(worker).AGENTQ_METRICS_PORT?.value).toBe('9464');
    for (const [c, port] of [
      [api, 'http'],
      [worker, 'metrics'],
    ] as const) {
      expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port });
      expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port });
      // HOST=0.0.0.0 (the kubelet probes the pod's address) needs tokens: agentq refuses it without.
      expect(env(c).HOST?.value).toBe('0.0.0.0');
      expect(env(c).AGENTQ_API_TOKENS?.valueFrom).toEqual({
        secretKeyRef: { name: 'agentq', key: 'AGENTQ_API_TOKENS' },
      });
    }
    for (const c of [api, worker, migrate]) {
      expect(c.resources.requests).toMatchObject({
        cpu: expect.any(String),
        memory: expect.any(String),
      });
      expect(c.resources.limits).toMatchObject({ memory: expect.any(String) });
      expect(env(c).DATABASE_URL?.valueFrom).toEqual({
        secretKeyRef: { name: 'agentq', key: 'DATABASE_URL' },
      });
    }
    // The Service reaches the API pods on the API's port.
    const service = byName('Service', 'agentq-api').spec as {
      selector: Record<string, string>;
      ports: Array<{ targetPort: string }>;
    };
    const apiLabels = (
      byName('Deployment', 'agentq-api').spec.template as { metadata: { labels: object } }
    ).metadata.labels;
    expect(apiLabels).toMatchObject(service.selector);
    expect(service.ports[0]!.targetPort).toBe('http');
    expect(all.some((m) => m.kind === 'Secret')).toBe(false);
  });

  it('fails validation for a broken manifest', async () => {
    const all = await manifests();
    const deployment = all.find((m) => m.metadata.name === 'agentq-worker')!;
    const broken: Array<[string, (m: Manifest) => void, RegExp]> = [
      ['replicas as a word', (m) => (m.spec.replicas = 'two'), /replicas must be integer/],
      [
        'a probe without a port',
        (m) => delete (containerOf(m).readinessProbe!.httpGet as { port?: string }).port,
        /httpGet must have required property '?port/,
      ],
      ['no selector', (m) => delete m.spec.selector, /spec must have required property '?selector/],
      ['env as a map', (m) => (containerOf(m).env = { A: '1' } as never), /env must be array/],
    ];
    for (const [what, breakIt, message] of broken) {
      const copy = structuredClone(deployment);
      breakIt(copy);
      expect(() => validate(copy), what).toThrow(message);
    }
    expect(() => validate({ ...deployment, apiVersion: 'apps/v2' })).toThrow(/no model/);
  });
});
