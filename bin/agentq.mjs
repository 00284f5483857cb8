#!/usr/bin/env node
// The `agentq` command (package.json "bin"). Runs the compiled CLI when a
// build made dist/, else the TypeScript source through tsx, so a clean clone
// needs no build step.
import { existsSync } from 'node:fs';
import { URL } from 'node:url';

const compiled = new URL('../dist/cli/main.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../cli/main.ts', import.meta.url).href);
}
