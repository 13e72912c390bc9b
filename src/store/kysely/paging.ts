import type { SelectQueryBuilder } from 'kysely';
import type { Page, PageQuery } from '../../core/model.ts';

/** Runs a page query: total count plus one page of rows, in ThingsBoard's PageData shape. */
export async function fetchPage<DB, TB extends keyof DB, Row, T>(
  base: SelectQueryBuilder<DB, TB, object>,
  query: PageQuery,
  select: (qb: SelectQueryBuilder<DB, TB, object>) => SelectQueryBuilder<DB, TB, Row>,
  map: (row: Row) => T,
): Promise<Page<T>> {
  const pageSize = Math.max(1, query.pageSize);
  const page = Math.max(0, query.page);
  const countRow = (await (base as any).select((eb: any) => eb.fn.countAll().as('n')).executeTakeFirst()) as { n: number | string } | undefined;
  const total = Number(countRow?.n ?? 0);
  const rows = await select(base).limit(pageSize).offset(page * pageSize).execute();
  const totalPages = Math.ceil(total / pageSize);
  return { data: (rows as Row[]).map(map), totalPages, totalElements: total, hasNext: (page + 1) * pageSize < total };
}
