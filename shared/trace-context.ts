/**
 * How a trace crosses from the API to the worker: the submit request's span
 * context, written as W3C propagation headers into a small JSON object that is
 * stored on the task row (migration 0007), and read back by the worker.
 *
 * Only @opentelemetry/api is used here. With tracing off its propagator is a
 * no-op, so nothing is written (NULL) and nothing is read: no cost.
 */
import {
  propagation,
  ROOT_CONTEXT,
  trace,
  type Context,
  type TextMapGetter,
  type Tracer,
} from '@opentelemetry/api';

/** The instrumentation scope of every agentq span. */
export const TRACER_NAME = 'agentq';

/** The tracer a caller passed in, else the global one (a no-op unless tracing was started). */
export function tracerOr(tracer: Tracer | undefined): Tracer {
  return tracer ?? trace.getTracer(TRACER_NAME);
}

/** W3C propagation headers, as stored in `agentq.tasks.trace_context`. */
export type TraceCarrier = Record<string, string>;

// Only the trace context is kept: a registered baggage propagator would
// otherwise copy whatever `baggage` header a client sent onto every task row.
const KEPT = ['traceparent', 'tracestate'] as const;

/** The carrier for `ctx`'s span, or null when there is none (tracing off, nothing sampled in). */
export function traceCarrierOf(ctx: Context): TraceCarrier | null {
  const injected: Record<string, string> = {};
  propagation.inject(ctx, injected);
  const carrier: TraceCarrier = {};
  for (const key of KEPT) {
    const value = injected[key];
    if (typeof value === 'string' && value.length > 0) carrier[key] = value;
  }
  return carrier.traceparent === undefined ? null : carrier;
}

/** The remote parent a stored carrier describes (the root context when there is none). */
export function contextOfCarrier(carrier: TraceCarrier | null | undefined): Context {
  if (!carrier || typeof carrier !== 'object') return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, carrier, carrierGetter);
}

const carrierGetter: TextMapGetter<TraceCarrier> = {
  get: (carrier, key) => {
    const value = carrier[key];
    return typeof value === 'string' ? value : undefined;
  },
  keys: (carrier) => Object.keys(carrier),
};
