/**
 * The `agentq` CLI's entry point (bin/agentq.mjs imports it): runs the
 * command line and exits with the code its outcome calls for, printing one
 * message that says what to fix when something goes wrong.
 */
import { CommanderError } from 'commander';
import { CliError, EXIT } from './exit-codes.ts';
import { buildProgram } from './program.ts';
import { colorsWanted } from './terminal.ts';
import picocolors from 'picocolors';

export async function runCli(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let code: number = EXIT.ok;
  const red = picocolors.createColors(colorsWanted(process.stderr, env)).red;
  const program = buildProgram(env, (c) => (code = c));
  program.configureOutput({ outputError: (text, write) => write(red(text)) });
  try {
    await program.parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof CliError) {
      process.stderr.write(`${red(`agentq: ${err.message}`)}\n`);
      return err.exitCode;
    }
    process.stderr.write(
      `agentq: unexpected error (a bug in the CLI): ${(err as Error)?.stack ?? String(err)}\n`,
    );
    return EXIT.internal;
  }
}

// A reader that stops early (`agentq list | head -1`) is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(EXIT.ok);
  throw err;
});

const code = await runCli(process.argv, process.env);
process.exitCode = code;
// Nothing should keep the process alive now; if something does, do not hang.
setTimeout(() => process.exit(code), 2000).unref();
