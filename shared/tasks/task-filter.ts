/**
 * Which tasks a list, a change stream or a bulk cancel is about: one filter,
 * one WHERE clause, so the three can never disagree on what "matches" means.
 */
import type { ExpressionBuilder, ExpressionWrapper, SqlBool } from 'kysely';
import { sql } from 'kysely';
import type { Database, TaskStatus } from '../db/schema.ts';

export interface TaskFilter {
  status?: readonly TaskStatus[];
  type?: string;
  /** The resolved config's provider (config->>'provider'), any of. */
  provider?: readonly string[];
  /** The resolved config's model (config->>'model'), any of. */
  model?: readonly string[];
  /** Ids from `lower` to `upper` inclusive: an id prefix, read through the primary key. */
  idRange?: { lower: string; upper: string };
  /** Case-insensitive substring of input.prompt (LIKE wildcards are escaped here). */
  promptContains?: string;
  createdAfter?: Date;
  createdBefore?: Date;
}

type Where = ExpressionWrapper<Database, 'agentq.tasks', SqlBool>;

/** `text` as a LIKE pattern matching itself anywhere (backslash is Postgres's default escape). */
export const containsPattern = (text: string) => `%${text.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;

/** The filter as one condition (true when the filter is empty). */
export function taskFilterWhere(filter: TaskFilter) {
  return (eb: ExpressionBuilder<Database, 'agentq.tasks'>): Where => {
    const all: Where[] = [];
    if (filter.status?.length) all.push(eb('status', 'in', filter.status));
    if (filter.type) all.push(eb('type', '=', filter.type as 'agent'));
    if (filter.provider?.length)
      all.push(eb(sql<string>`config->>'provider'`, 'in', filter.provider));
    if (filter.model?.length) all.push(eb(sql<string>`config->>'model'`, 'in', filter.model));
    if (filter.idRange) {
      all.push(eb('id', '>=', filter.idRange.lower));
      all.push(eb('id', '<=', filter.idRange.upper));
    }
    if (filter.promptContains !== undefined)
      all.push(eb(sql<string>`input->>'prompt'`, 'ilike', containsPattern(filter.promptContains)));
    if (filter.createdAfter) all.push(eb('created_at', '>', filter.createdAfter));
    if (filter.createdBefore) all.push(eb('created_at', '<', filter.createdBefore));
    return eb.and(all);
  };
}
