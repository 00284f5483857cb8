/**
 * Structured JSON logs (pino) to stdout. One logger per process, made in its
 * `main.ts` and passed down; `component` tells api, worker and migrate apart.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(component: string, level: string): Logger {
  return pino({ level, base: { component, pid: process.pid } });
}
