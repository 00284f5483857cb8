/**
 * Structured JSON logs (pino) to stdout. One logger per process, made in its
 * `main.ts` and passed down; `component` tells api, worker and migrate apart.
 *
 * `component` is a child binding, not part of pino's `base`: pino writes base
 * fields and child bindings side by side without merging them, so a child
 * naming its own component would print the key twice. Processes that host
 * several components (`npm start`) make one root and a child per component.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** The process's root logger: no component (give one with `forComponent`). Tests pass a destination. */
export function createRootLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, base: { pid: process.pid } };
  return destination ? pino(options, destination) : pino(options);
}

/** A logger for one component of a process whose root has none. */
export function forComponent(root: Logger, component: string): Logger {
  return root.child({ component });
}

export function createLogger(component: string, level: string): Logger {
  return forComponent(createRootLogger(level), component);
}
