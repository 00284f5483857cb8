/**
 * Opt-in OpenTelemetry tracing for one process (api, worker, or `npm start`).
 *
 * Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
 * is set: then, and only then, the SDK is imported (dynamically), spans are
 * batched and sent as OTLP over HTTP, and the provider is registered globally
 * with the W3C trace-context propagator and an AsyncLocalStorage context
 * manager. Off, nothing is imported and the code paths keep the no-op tracer
 * of @opentelemetry/api. Spans themselves are made in api/request-span.ts and
 * worker/agent/gen-ai-spans.ts.
 */
import { diag, DiagLogLevel } from '@opentelemetry/api';
import { ConfigError } from './config.ts';
import type { Logger } from './logger.ts';

export interface Tracing {
  enabled: boolean;
  /** Flushes the spans still buffered and stops exporting (bounded: a dead collector does not hold up a stop). */
  shutdown(): Promise<void>;
}

export interface TracingSettings {
  /** Where spans are POSTed (the collector's `/v1/traces`). */
  url: string;
  serviceName: string;
}

/**
 * What the standard OTEL_* variables ask for; undefined when tracing is off.
 * `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it off even with
 * an endpoint. A malformed endpoint is a ConfigError naming the variable.
 */
export function tracingSettings(
  env: NodeJS.ProcessEnv,
  defaultServiceName: string,
): TracingSettings | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  if (env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === 'none') return undefined;
  const specific = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  const general = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  let url: string;
  if (specific) {
    // The signal's own variable is the full URL, used as it is.
    url = checkedUrl(specific, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  } else if (general) {
    // The general one is the collector's base: traces go to /v1/traces under it.
    const base = checkedUrl(general, 'OTEL_EXPORTER_OTLP_ENDPOINT');
    url = `${base.endsWith('/') ? base : `${base}/`}v1/traces`;
  } else {
    return undefined;
  }
  return { url, serviceName: env.OTEL_SERVICE_NAME?.trim() || defaultServiceName };
}

function checkedUrl(value: string, name: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`invalid ${name}: must be an http:// or https:// URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ConfigError(`invalid ${name}: must be an http:// or https:// URL`);
  return value;
}

async function loadSdk() {
  const [node, otlp, resources, semconv] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/semantic-conventions'),
  ]);
  return { node, otlp, resources, semconv };
}

export interface StartTracingOptions {
  /** `service.name` unless OTEL_SERVICE_NAME says otherwise. */
  serviceName: string;
  logger: Logger;
  /** Imports the SDK; tests pass their own to see that it is never called when tracing is off. */
  load?: typeof loadSdk;
}

const OFF: Tracing = { enabled: false, shutdown: async () => {} };

// A stop waits at most this long for the last spans to reach the collector.
const SHUTDOWN_TIMEOUT_MS = 5000;

export async function startTracing(
  env: NodeJS.ProcessEnv,
  options: StartTracingOptions,
): Promise<Tracing> {
  const settings = tracingSettings(env, options.serviceName);
  if (!settings) return OFF;
  const { node, otlp, resources, semconv } = await (options.load ?? loadSdk)();
  const { logger } = options;

  // The SDK reports failed exports through diag, which is silent by default.
  diag.setLogger(
    {
      error: (message, ...args) => logger.warn({ otel: args }, `tracing: ${message}`),
      warn: (message, ...args) => logger.warn({ otel: args }, `tracing: ${message}`),
      info: () => {},
      debug: () => {},
      verbose: () => {},
    },
    { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
  );

  // OTEL_RESOURCE_ATTRIBUTES (read by the env detector) adds to the service name.
  const resource = resources
    .defaultResource()
    .merge(resources.detectResources({ detectors: [resources.envDetector] }))
    .merge(resources.resourceFromAttributes({ [semconv.ATTR_SERVICE_NAME]: settings.serviceName }));
  const provider = new node.NodeTracerProvider({
    resource,
    // Batched, in the background: a slow collector never slows a request or an attempt.
    spanProcessors: [
      new node.BatchSpanProcessor(new otlp.OTLPTraceExporter({ url: settings.url })),
    ],
  });
  provider.register();
  logger.info(
    { url: redactUrl(settings.url), serviceName: settings.serviceName },
    'tracing on: exporting spans over OTLP/HTTP',
  );

  return {
    enabled: true,
    async shutdown() {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, SHUTDOWN_TIMEOUT_MS);
        timer.unref();
      });
      await Promise.race([provider.shutdown().catch(() => {}), timeout]);
      clearTimeout(timer);
    },
  };
}

/** startTracing for a main.ts: a bad OTEL_* value prints one line and exits 1, like the config. */
export async function startTracingOrExit(
  env: NodeJS.ProcessEnv,
  options: StartTracingOptions,
): Promise<Tracing> {
  try {
    return await startTracing(env, options);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`agentq: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

function redactUrl(value: string): string {
  const url = new URL(value);
  if (url.password) url.password = '***';
  url.search = ''; // a token in the query string stays out of the log
  return url.toString();
}
