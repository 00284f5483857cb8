/**
 * Where the CLI writes: results on stdout, notes and errors on stderr, and a
 * spinner on stderr while it waits. Colours only on a terminal, never with
 * NO_COLOR; FORCE_COLOR turns them on for pipes. The spinner only runs on an
 * interactive terminal, never in --json mode.
 */
import type { Writable } from 'node:stream';
import picocolors from 'picocolors';
import yoctoSpinner, { type Spinner } from 'yocto-spinner';

export type Colors = ReturnType<typeof picocolors.createColors>;

type Stream = Writable & { isTTY?: boolean };

export interface Terminal {
  /** --json: one JSON object per line on stdout, no decoration. */
  readonly json: boolean;
  /** Colours for stdout and for stderr (each on only where that stream allows). */
  readonly color: Colors;
  readonly errColor: Colors;
  /** A line on stdout. */
  out(line: string): void;
  /** A JSON line on stdout. */
  outJson(value: unknown): void;
  /** A line on stderr. */
  note(line: string): void;
  /** Shows (or changes) the spinner's text; undefined hides it. */
  waiting(text: string | undefined): void;
}

/**
 * Colours: never with NO_COLOR (non-empty, as no-color.org says), always with
 * FORCE_COLOR (other than 0 or false), otherwise only on a terminal that has them.
 */
export function colorsWanted(stream: Stream, env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR) return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '') return force !== '0' && force !== 'false';
  if (stream.isTTY !== true || env.TERM === 'dumb') return false;
  const tty = stream as Stream & { hasColors?: (count?: number, env?: object) => boolean };
  return tty.hasColors?.(16, env) ?? true;
}

export function createTerminal(options: {
  json: boolean;
  stdout?: Stream;
  stderr?: Stream;
  env?: NodeJS.ProcessEnv;
}): Terminal {
  const { json, stdout = process.stdout, stderr = process.stderr, env = process.env } = options;
  const color = picocolors.createColors(!json && colorsWanted(stdout, env));
  const errColor = picocolors.createColors(colorsWanted(stderr, env));
  // The same test yocto-spinner makes, so it never falls back to printing frames as lines.
  const animate = !json && stderr.isTTY === true && env.TERM !== 'dumb' && !('CI' in env);
  let spinner: Spinner | undefined;
  return {
    json,
    color,
    errColor,
    out: (line) => void stdout.write(`${line}\n`),
    outJson: (value) => void stdout.write(`${JSON.stringify(value)}\n`),
    note: (line) => void stderr.write(`${line}\n`),
    waiting(text) {
      if (!animate) return;
      if (text === undefined) {
        spinner?.stop();
        spinner = undefined;
      } else if (spinner) {
        spinner.text = text;
      } else {
        spinner = yoctoSpinner({ text, stream: stderr }).start();
      }
    },
  };
}
