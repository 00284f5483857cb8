/**
 * The `current_time` tool: the current date and time in an IANA time zone,
 * since a model has no clock of its own.
 */
import * as v from 'valibot';
import { defineTool, ToolError } from './tool.ts';

const schema = v.strictObject({
  timezone: v.optional(
    v.pipe(
      v.string('must be a string'),
      v.minLength(1, 'must not be empty'),
      v.maxLength(64, 'must be at most 64 characters'),
      v.description('IANA time zone such as "Europe/Paris" or "America/New_York". Default "UTC".'),
    ),
  ),
});

export interface CurrentTimeOptions {
  /** The clock; tests pass a fixed one. Default: the system clock. */
  now?: () => Date;
}

export function createCurrentTimeTool(options: CurrentTimeOptions = {}) {
  const now = options.now ?? (() => new Date());
  return defineTool({
    name: 'current_time',
    description:
      'Returns the current date and time: UTC as ISO-8601, plus the local wall-clock time and UTC offset ' +
      'in the given IANA time zone (default UTC).',
    schema,
    async run({ timezone = 'UTC' }) {
      const zone = timezone.trim();
      let format: Intl.DateTimeFormat;
      try {
        format = new Intl.DateTimeFormat('en-US', {
          timeZone: zone,
          hourCycle: 'h23',
          year: 'numeric',
          month: '2-digit',
          day: '2-digit',
          hour: '2-digit',
          minute: '2-digit',
          second: '2-digit',
        });
      } catch {
        throw new ToolError(
          `unknown time zone "${timezone}"; use an IANA name such as "Europe/Paris" or "UTC"`,
        );
      }
      const instant = now();
      const parts = format.formatToParts(instant);
      const part = (type: Intl.DateTimeFormatPartTypes): number =>
        Number(parts.find((p) => p.type === type)?.value);
      const [year, month, day, hour, minute, second] = (
        ['year', 'month', 'day', 'hour', 'minute', 'second'] as const
      ).map(part) as [number, number, number, number, number, number];
      // The offset is how far the zone's wall clock is from UTC at this instant
      // (whole seconds on both sides, so milliseconds do not leak in).
      const wallClockAsUtc = Date.UTC(year, month - 1, day, hour, minute, second);
      const offsetMinutes = Math.round(
        (wallClockAsUtc - Math.floor(instant.getTime() / 1000) * 1000) / 60_000,
      );
      return {
        timezone: zone,
        iso: instant.toISOString(),
        local: `${String(year).padStart(4, '0')}-${pad(month)}-${pad(day)} ${pad(hour)}:${pad(minute)}:${pad(second)}`,
        utc_offset: formatOffset(offsetMinutes),
      };
    },
  });
}

export const currentTimeTool = createCurrentTimeTool();

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}
