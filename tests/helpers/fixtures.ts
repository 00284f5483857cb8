/** Row fixtures: `newTask(overrides)` for the query functions. */
import { uuidv7 } from 'uuidv7';
import { resolveAgentConfig } from '../../shared/tasks/agent-config.ts';
import type { NewTask } from '../../shared/tasks/task-queries.ts';

export function newTask(overrides: Partial<NewTask> = {}): NewTask {
  return {
    id: uuidv7(),
    type: 'agent',
    input: { prompt: 'What is 2 + 2?' },
    config: resolveAgentConfig({}, { provider: 'offline', model: undefined }),
    maxAttempts: 3,
    priority: 0,
    timeoutMs: 60_000,
    runAt: null,
    metadata: {},
    idempotencyKey: null,
    requestHash: null,
    ...overrides,
  };
}
