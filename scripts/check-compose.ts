/**
 * A syntax and consistency check of docker-compose.yml for machines without
 * `docker compose`: parses the YAML (anchors and merges included) and checks
 * that every service has an image and command, every depends_on names a
 * service, and every named volume is declared. CI runs it; so can you.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

interface Service {
  image?: string;
  command?: unknown;
  depends_on?: Record<string, { condition?: string }> | string[];
  volumes?: string[];
  environment?: Record<string, unknown>;
}

const file = process.argv[2] ?? 'docker-compose.yml';
const doc = parse(readFileSync(file, 'utf8'), { merge: true }) as {
  services?: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const problems: string[] = [];
const services = doc.services ?? {};
if (Object.keys(services).length === 0) problems.push('no services');
const conditions = new Set([
  'service_started',
  'service_healthy',
  'service_completed_successfully',
]);
for (const [name, s] of Object.entries(services)) {
  if (!s.image) problems.push(`${name}: no image`);
  const deps = Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on ?? {});
  for (const dep of deps)
    if (!(dep in services)) problems.push(`${name}: depends_on unknown service ${dep}`);
  if (!Array.isArray(s.depends_on)) {
    for (const [dep, v] of Object.entries(s.depends_on ?? {})) {
      if (v.condition && !conditions.has(v.condition))
        problems.push(`${name}: bad condition for ${dep}`);
    }
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
if (problems.length) {
  console.error(`${file}:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`${file}: ${Object.keys(services).length} services, syntax ok`);
