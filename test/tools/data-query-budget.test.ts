import t from 'tap'
import { sql } from 'kysely'
import { buildApp, uniqueTenantId } from '../helper.ts'
import { withTenant } from '../../services/db/with-tenant.ts'
import { DATA_TOOLS } from '../../services/tools/data-tools.ts'
import { TIER_QUOTAS } from '../../services/tenants/tiers.ts'
import { ToolResultTooLargeError } from '../../services/tools/tool-definition.ts'

// data:query measures its page in SQL and reads the bodies only when the whole page fits. The
// budget it enforces is exactly this accounting: 2 bytes for the array, and per document its
// body's text form, its system fields' JSON and a comma. A page of exactly the budget is read;
// one byte less, and the call is refused with nothing read.
t.test('data:query holds TOOL_RESULT_MAX_BYTES to the byte', async (t) => {
  const app = await buildApp(t)
  const tenantId = uniqueTenantId('budget')
  // A creator whose JSON needs escapes, and bodies with multi-byte and escaped characters.
  const createdBy = 'user "q"\n\\ ✓'
  const caller = { tenantId, userId: createdBy, permissions: [], quotas: TIER_QUOTAS.free }
  const query = DATA_TOOLS.find((tool) => tool.name === 'data:query')?.runAsTenant
  if (query === undefined) throw new Error('data:query reads through runAsTenant')
  await withTenant(app.db, tenantId, async (trx) => {
    for (const body of [{ text: 'naïve "quoted" ✓', n: 1 }, { list: [1, 2, { deep: '\u0001' }] }]) {
      await trx.insertInto('documents').values({ tenant_id: tenantId, collection: 'budget', body: JSON.stringify(body), created_by: createdBy }).execute()
    }
  })
  const bodyBytes = await withTenant(app.db, tenantId, async (trx) =>
    (await sql<{ id: string, bytes: number }>`select id, octet_length(body::text)::int as bytes from documents where collection = 'budget'`.execute(trx)).rows)

  const everything = await query(app.db, caller, { collection: 'budget' }, {}, { maxResultBytes: 1024 * 1024 }) as Array<Record<string, unknown>>
  t.equal(everything.length, 2)
  let expected = 2
  for (const document of everything) {
    const { id, tenantId: owner, createdBy: creator, createdAt } = document
    t.equal(creator, createdBy)
    expected += (bodyBytes.find((row) => row.id === id)?.bytes ?? NaN) + Buffer.byteLength(JSON.stringify({ id, tenantId: owner, createdBy: creator, createdAt })) + 1
  }

  t.same(await query(app.db, caller, { collection: 'budget' }, {}, { maxResultBytes: expected }), everything, 'a page of exactly the budget is read whole')
  await t.rejects(query(app.db, caller, { collection: 'budget' }, {}, { maxResultBytes: expected - 1 }), ToolResultTooLargeError, 'one byte less is refused')
  t.same(await query(app.db, caller, { collection: 'budget', limit: 1 }, {}, { maxResultBytes: expected - 1 }), everything.slice(0, 1), 'a smaller page of the same documents fits')
  t.same(await query(app.db, caller, { collection: 'nothing-here' }, {}, { maxResultBytes: 2 }), [], 'an empty page costs nothing')
  t.same(await query(app.db, { ...caller, tenantId: uniqueTenantId('other') }, { collection: 'budget' }, {}, { maxResultBytes: expected }), [], 'another tenant sees none of them')
})
