// current_time: fields, time zones with and without daylight saving, errors.
import { describe, expect, it } from 'vitest';
import { createCurrentTimeTool, currentTimeTool } from '../../worker/tools/current-time.ts';
import { ToolError } from '../../worker/tools/tool.ts';

const context = { signal: new AbortController().signal, httpAllowlist: [] };
const at = (iso: string) => createCurrentTimeTool({ now: () => new Date(iso) });

describe('current_time', () => {
  it('defaults to UTC', async () => {
    await expect(at('2026-01-15T12:34:56.789Z').run({}, context)).resolves.toEqual({
      timezone: 'UTC',
      iso: '2026-01-15T12:34:56.789Z',
      local: '2026-01-15 12:34:56',
      utc_offset: '+00:00',
    });
  });

  it.each([
    ['Europe/Paris', '2026-01-15T12:34:56.789Z', '2026-01-15 13:34:56', '+01:00'],
    ['Europe/Paris', '2026-07-15T12:34:56.789Z', '2026-07-15 14:34:56', '+02:00'],
    ['America/New_York', '2026-01-15T03:00:00.000Z', '2026-01-14 22:00:00', '-05:00'],
    ['America/New_York', '2026-07-15T03:00:00.000Z', '2026-07-14 23:00:00', '-04:00'],
    ['Asia/Kolkata', '2026-11-23T20:05:07.000Z', '2026-11-24 01:35:07', '+05:30'],
    ['Asia/Kathmandu', '2026-11-23T20:05:07.000Z', '2026-11-24 01:50:07', '+05:45'],
    ['Pacific/Kiritimati', '2026-12-31T12:00:00.000Z', '2027-01-01 02:00:00', '+14:00'],
    ['America/St_Johns', '2026-01-01T00:00:00.000Z', '2025-12-31 20:30:00', '-03:30'],
    ['Etc/GMT+5', '2026-01-01T00:00:00.000Z', '2025-12-31 19:00:00', '-05:00'],
  ])('in %s at %s', async (timezone, iso, local, offset) => {
    await expect(at(iso).run({ timezone }, context)).resolves.toEqual({
      timezone,
      iso,
      local,
      utc_offset: offset,
    });
  });

  it('shows midnight as 00, not 24', async () => {
    const out = (await at('2026-03-01T23:00:00.000Z').run(
      { timezone: 'Europe/Berlin' },
      context,
    )) as { local: string };
    expect(out.local).toBe('2026-03-02 00:00:00');
  });

  it.each(['Mars/Olympus_Mons', 'not a zone', 'UTC+25', '../../etc/passwd'])(
    'refuses the unknown zone %j',
    async (timezone) => {
      await expect(currentTimeTool.run({ timezone }, context)).rejects.toThrow(ToolError);
      await expect(currentTimeTool.run({ timezone }, context)).rejects.toThrow(/unknown time zone/);
    },
  );

  it('reads the real clock by default', async () => {
    const before = Date.now();
    const out = (await currentTimeTool.run({}, context)) as { iso: string };
    const reported = Date.parse(out.iso);
    expect(reported).toBeGreaterThanOrEqual(before);
    expect(reported).toBeLessThanOrEqual(Date.now());
  });
});
