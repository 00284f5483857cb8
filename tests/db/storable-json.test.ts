// Any text survives a trip through a real jsonb column once it has passed
// toStorableJson: strings and keys with NULs and lone surrogates included.
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storableString, toStorableJson } from '../../shared/tasks/storable-json.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/test-db.ts';

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
  await sql`CREATE TABLE storable (id serial PRIMARY KEY, data jsonb NOT NULL)`.execute(tdb.db);
});
afterAll(() => tdb?.drop());

async function roundTrip(json: string): Promise<unknown> {
  const { rows } = await sql<{ data: unknown }>`
    INSERT INTO storable (data) VALUES (${json}::jsonb) RETURNING data`.execute(tdb.db);
  return rows[0]!.data;
}

/** Any UTF-16 code unit sequence, biased towards the troublesome ones. */
const anyText = fc.oneof(
  fc.string({ unit: 'binary' }),
  fc
    .array(
      fc.oneof(
        fc.integer({ min: 0, max: 0xffff }),
        fc.constantFrom(0, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0x41, 0x5c, 0x22),
      ),
      { maxLength: 24 },
    )
    .map((units) => String.fromCharCode(...units)),
);

// eslint-disable-next-line no-control-regex -- NUL is what must be absent
const WELL_FORMED = /^(?:[^\u0000\ud800-\udfff]|[\ud800-\udbff][\udc00-\udfff])*$/;

/** What the value must read back as: every string and key passed through storableString. */
function expected(value: unknown): unknown {
  if (typeof value === 'string') return storableString(value);
  if (Array.isArray(value)) return value.map(expected);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [storableString(k), expected(v)]),
    );
  }
  return value;
}

const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small' },
    anyText,
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('tree'), { maxLength: 4 }),
    fc.dictionary(anyText, tie('tree'), { maxKeys: 4 }),
  ),
}));

describe('storableString', () => {
  it('replaces NULs and lone surrogates with U+FFFD and leaves good text alone', () => {
    expect(storableString('a\u0000b')).toBe('a\ufffdb');
    expect(storableString('\ud800')).toBe('\ufffd');
    expect(storableString('x\udc00y\ud83d')).toBe('x\ufffdy\ufffd');
    expect(storableString('\udc00\ud800')).toBe('\ufffd\ufffd'); // reversed pair: both lone
    expect(storableString('pair \ud83d\ude00 ok')).toBe('pair \ud83d\ude00 ok');
    fc.assert(
      fc.property(anyText, (text) => {
        const clean = storableString(text);
        expect(clean).toMatch(WELL_FORMED);
        expect(clean).toHaveLength(text.length);
        if (WELL_FORMED.test(text)) expect(clean).toBe(text);
      }),
    );
  });
});

describe('toStorableJson', () => {
  it('a plain JSON.stringify of such text is refused by jsonb (why this exists)', async () => {
    await expect(roundTrip(JSON.stringify({ text: 'a\u0000b' }))).rejects.toThrow(/unicode/i);
    await expect(roundTrip(JSON.stringify({ ['\ud800']: 1 }))).rejects.toThrow();
  });

  it('any string and any key survive a round trip through a jsonb column', async () => {
    await fc.assert(
      fc.asyncProperty(tree, async (value) => {
        const stored = await roundTrip(toStorableJson(value));
        expect(stored).toEqual(expected(value));
      }),
      { numRuns: 300 },
    );
  });

  it('any string survives at the top level and as a key', async () => {
    await fc.assert(
      fc.asyncProperty(anyText, async (text) => {
        expect(await roundTrip(toStorableJson(text))).toBe(storableString(text));
        expect(await roundTrip(toStorableJson({ [text]: text }))).toEqual({
          [storableString(text)]: storableString(text),
        });
      }),
      { numRuns: 300 },
    );
  });

  it('keeps toJSON (dates) working', () => {
    const at = new Date('2026-01-01T00:00:00Z');
    expect(toStorableJson({ at })).toBe('{"at":"2026-01-01T00:00:00.000Z"}');
  });
});
