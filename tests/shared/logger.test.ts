// Log lines carry each key once: `component` used to be written twice on every
// `npm start` line (once from pino's base, once from the child binding).
import { describe, expect, it } from 'vitest';
import { createRootLogger, forComponent } from '../../shared/logger.ts';
import { duplicateKeys, topLevelKeys } from '../helpers/log-lines.ts';

function capture() {
  const lines: string[] = [];
  return { lines, destination: { write: (line: string) => void lines.push(line.trim()) } };
}

describe('log lines', () => {
  it('the duplicate finder sees keys JSON.parse would merge', () => {
    const line = '{"a":1,"b":{"a":2,"c":[{"a":3}]},"s":"x\\",\\"a\\":","a":4}';
    expect(topLevelKeys(line)).toEqual(['a', 'b', 's', 'a']);
    expect(duplicateKeys(line)).toEqual(['a']);
  });

  it('a component logger and its children write each key once', () => {
    const { lines, destination } = capture();
    const root = createRootLogger('info', destination);
    const api = forComponent(root, 'api');
    api.info('listening');
    api.child({ taskId: 't1', attempt: 1 }).warn({ extra: { component: 'nested' } }, 'attempt');
    forComponent(root, 'worker').info({ workerId: 'w' }, 'started');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(duplicateKeys(line), line).toEqual([]);
    expect(lines.map((l) => (JSON.parse(l) as { component: string }).component)).toEqual([
      'api',
      'api',
      'worker',
    ]);
  });
});
