/**
 * `npm run chaos`: the chaos run (tests/e2e/chaos.test.ts) at a bigger size —
 * workers killed, stopped and restarted under load, then a count of lost and
 * duplicated tasks. Runs `npx vitest run tests/e2e/chaos.test.ts` with
 * CHAOS_TASKS (default 300) and CHAOS_FAULT_MS (default 60000), passes
 * CHAOS_SEED through to replay a run, and exits with vitest's code. Like
 * `npm test`, it uses TEST_DATABASE_URL if set and an embedded Postgres if not.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const env: NodeJS.ProcessEnv = {
  ...process.env,
  CHAOS_TASKS: process.env.CHAOS_TASKS || '300',
  CHAOS_FAULT_MS: process.env.CHAOS_FAULT_MS || '60000',
};
for (const name of ['CHAOS_TASKS', 'CHAOS_FAULT_MS', 'CHAOS_SEED'] as const) {
  const value = env[name];
  if (value !== undefined && value !== '' && !/^\d+$/.test(value)) {
    process.stderr.write(`chaos: ${name} must be a non-negative integer, got "${value}"\n`);
    process.exit(2);
  }
}
console.log(
  `chaos: CHAOS_TASKS=${env.CHAOS_TASKS} CHAOS_FAULT_MS=${env.CHAOS_FAULT_MS} CHAOS_SEED=${env.CHAOS_SEED || '(random)'} ` +
    `database=${env.TEST_DATABASE_URL ? new URL(env.TEST_DATABASE_URL).host : 'embedded'}`,
);

const child = spawn('npx', ['vitest', 'run', 'tests/e2e/chaos.test.ts'], {
  cwd: ROOT,
  env,
  stdio: 'inherit',
});
// Ctrl-C reaches vitest through the terminal's process group, so here it only
// waits for vitest to finish; a SIGTERM sent to this process alone is passed on.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('error', (err) => {
  process.stderr.write(`chaos: could not start vitest: ${err.message}\n`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  process.exit(code ?? (signal ? 1 : 0));
});
