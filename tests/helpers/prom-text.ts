/**
 * A strict reader of the Prometheus text exposition format (0.0.4), for
 * tests: prom-client does not export a parser, and checking our output with
 * the writer that produced it would prove nothing. Throws on any line that
 * is not a HELP, TYPE or sample line, on a sample of an undeclared family,
 * on a bad name, label or value, and on a histogram whose buckets do not
 * grow or whose +Inf bucket differs from its _count.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  types: Map<string, string>;
  samples: Sample[];
  /** Samples named `name` whose labels include `labels`. */
  find(name: string, labels?: Record<string, string>): Sample[];
  /** The sum of those samples' values (0 when none). */
  sum(name: string, labels?: Record<string, string>): number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES = ['_bucket', '_sum', '_count'];

export function parsePromText(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const lines = text.split('\n');
  if (lines.at(-1) !== '') throw new Error('the exposition must end with a newline');
  for (const [i, line] of lines.slice(0, -1).entries()) {
    const where = `line ${i + 1}: ${line}`;
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) throw new Error(`bad comment, ${where}`);
      if (!NAME.test(m[2]!)) throw new Error(`bad metric name, ${where}`);
      if (m[1] === 'TYPE') {
        if (!TYPES.has(m[3]!)) throw new Error(`unknown type, ${where}`);
        if (types.has(m[2]!)) throw new Error(`TYPE given twice, ${where}`);
        types.set(m[2]!, m[3]!);
      }
      continue;
    }
    const sample = parseSample(line, where);
    if (familyOf(sample.name, types) === undefined)
      throw new Error(`sample of an undeclared family, ${where}`);
    samples.push(sample);
  }
  checkHistograms(types, samples);
  const matches = (s: Sample, name: string, labels: Record<string, string>) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v);
  const find = (name: string, labels: Record<string, string> = {}) =>
    samples.filter((s) => matches(s, name, labels));
  return {
    types,
    samples,
    find,
    sum: (name, labels) => find(name, labels).reduce((total, s) => total + s.value, 0),
  };
}

function parseSample(line: string, where: string): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)( -?\d+)?$/.exec(line);
  if (!m) throw new Error(`bad sample, ${where}`);
  const labels: Record<string, string> = {};
  if (m[2] !== undefined) {
    // name="value" pairs; a value escapes only \\, \" and \n.
    const body = m[2].slice(1, -1);
    const pair = /([^=,\s]+)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/gy;
    let at = 0;
    while (at < body.length) {
      pair.lastIndex = at;
      const p = pair.exec(body);
      if (!p) throw new Error(`bad labels, ${where}`);
      if (!LABEL.test(p[1]!)) throw new Error(`bad label name, ${where}`);
      if (p[1]! in labels) throw new Error(`label given twice, ${where}`);
      labels[p[1]!] = p[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      at = pair.lastIndex;
    }
  }
  const value = parseValue(m[3]!);
  if (value === undefined) throw new Error(`bad value, ${where}`);
  return { name: m[1]!, labels, value };
}

/**
 * A Go float as Prometheus reads it (strconv.ParseFloat): NaN and Inf in any
 * case (prom-client writes an empty event-loop histogram's mean as `Nan`).
 */
function parseValue(raw: string): number | undefined {
  if (/^nan$/i.test(raw)) return NaN;
  const inf = /^([+-]?)inf(inity)?$/i.exec(raw);
  if (inf) return inf[1] === '-' ? -Infinity : Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw)) return undefined;
  return Number(raw);
}

function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  for (const suffix of SUFFIXES) {
    const base = name.endsWith(suffix) ? name.slice(0, -suffix.length) : undefined;
    if (base !== undefined && ['histogram', 'summary'].includes(types.get(base) ?? '')) return base;
  }
  return undefined;
}

function checkHistograms(types: Map<string, string>, samples: Sample[]): void {
  for (const [name, type] of types) {
    if (type !== 'histogram') continue;
    const series = new Map<string, Sample[]>();
    for (const s of samples.filter((x) => x.name === `${name}_bucket`)) {
      const { le, ...rest } = s.labels;
      if (le === undefined) throw new Error(`${name}_bucket without le`);
      const key = JSON.stringify(Object.entries(rest).sort());
      series.set(key, [...(series.get(key) ?? []), s]);
    }
    for (const [key, buckets] of series) {
      let previous = -Infinity;
      let count = 0;
      for (const b of buckets) {
        const le = b.labels.le === '+Inf' ? Infinity : Number(b.labels.le);
        if (!(le > previous)) throw new Error(`${name}: buckets out of order (${key})`);
        if (b.value < count) throw new Error(`${name}: a bucket count went down (${key})`);
        previous = le;
        count = b.value;
      }
      if (previous !== Infinity) throw new Error(`${name}: no +Inf bucket (${key})`);
      const total = samples.find(
        (s) =>
          s.name === `${name}_count` && JSON.stringify(Object.entries(s.labels).sort()) === key,
      );
      if (total?.value !== count) throw new Error(`${name}: +Inf bucket is not _count (${key})`);
    }
  }
}
