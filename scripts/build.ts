/**
 * `npm run build`: compiles the runtime TypeScript to JavaScript in dist/
 * (tsconfig.build.json: every top-level directory but tests and bench, so a
 * new one is built without a change here), then copies what the compiled code
 * reads at run time but tsc does not emit: migrations/*.sql, and every file of
 * a built directory that is not TypeScript (the heartbeat thread's .mjs,
 * static assets). dist/ mirrors the checkout (dist/api/main.js,
 * dist/migrations/, a dist/package.json with the name, version and module
 * type), so code that finds files relative to its own module finds them there
 * too. Run the result with plain node and production dependencies only:
 *
 *   node dist/scripts/migrate.js && node dist/api/main.js   # and dist/worker/main.js
 *
 * `--out-dir DIR` builds elsewhere (the tests do); DIR is emptied first.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { 'out-dir': { type: 'string' } } });
const outDir = path.resolve(ROOT, values['out-dir'] ?? 'dist');
if (outDir === ROOT || outDir === path.parse(outDir).root || ROOT.startsWith(outDir + path.sep)) {
  console.error(`build: refusing to empty ${outDir}`);
  process.exit(2);
}

rmSync(outDir, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const compiled = spawnSync(
  process.execPath,
  [tsc, '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', outDir],
  { cwd: ROOT, stdio: 'inherit' },
);
if (compiled.status !== 0) process.exit(compiled.status ?? 1);

/** Copies the files under `from` that tsc does not emit (anything but .ts). */
function copyRuntimeFiles(from: string, to: string): number {
  let copied = 0;
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    if (entry.isDirectory()) {
      if (entry.name === 'node_modules') continue;
      copied += copyRuntimeFiles(source, path.join(to, entry.name));
    } else if (entry.isFile() && !entry.name.endsWith('.ts')) {
      mkdirSync(to, { recursive: true });
      cpSync(source, path.join(to, entry.name));
      copied += 1;
    }
  }
  return copied;
}

let copied = 0;
// The directories tsc built are the source directories whose other files come along.
for (const dir of readdirSync(outDir, { withFileTypes: true })) {
  if (dir.isDirectory())
    copied += copyRuntimeFiles(path.join(ROOT, dir.name), path.join(outDir, dir.name));
}
copied += copyRuntimeFiles(path.join(ROOT, 'migrations'), path.join(outDir, 'migrations'));

// The module type (dist/ is ESM) and the version the API reports.
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Record<
  string,
  unknown
>;
const { name, version, type, engines } = pkg;
writeFileSync(
  path.join(outDir, 'package.json'),
  `${JSON.stringify({ name, version, private: true, type, engines }, null, 2)}\n`,
);
console.log(
  `build: ${path.relative(ROOT, outDir) || outDir} (compiled, plus ${copied} other files)`,
);
