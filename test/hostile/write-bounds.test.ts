import t from 'tap'
import { sql } from 'kysely'
import { sharedApp, createTenant } from '../helper.ts'
import { withTenant } from '../../services/db/with-tenant.ts'
import { TIER_WRITE_LIMITS } from '../../services/tenants/tiers.ts'

// Issue 28, item 3: one data:update rewrote every matching document, so a free tenant grew the
// documents table by gigabytes in minutes. A call over its tier's bounds now writes nothing.

const FREE = TIER_WRITE_LIMITS.free

t.test('data:update and data:delete are bounded per call by the tier', async (t) => {
  const app = await sharedApp()
  const tenant = await createTenant(app, 'writer', { tier: 'free' })
  const seed = async (collection: string, count: number, size: number): Promise<void> => {
    await withTenant(app.db, tenant.tenantId, async (trx) => {
      await sql`insert into documents (tenant_id, collection, body, created_by)
        select ${tenant.tenantId}, ${collection}, jsonb_build_object('g', g % 2, 'pad', repeat('x', ${size})), 'seed'
        from generate_series(1, ${count}) as g`.execute(trx)
    })
  }
  const count = async (collection: string, where = sql<boolean>`true`): Promise<number> => await withTenant(app.db, tenant.tenantId, async (trx) => {
    const rows = await trx.selectFrom('documents').select('id').where('collection', '=', collection).where(where).execute()
    return rows.length
  })
  const run = async (code: string): Promise<any> => (await tenant.execute(code)).json()

  await seed('many', FREE.maxRowsWrittenPerCall + 1, 10)
  const over = await run('try { await callTool(\'data:update\', { collection: \'many\', filter: {}, set: { hit: true } }); return \'written\' } catch (e) { return { code: e.code, message: e.message } }')
  t.equal(over.value?.code, 'TOOL_ERROR', 'an update over the row bound is a catchable TOOL_ERROR')
  t.match(over.value?.message, new RegExp(`more than ${FREE.maxRowsWrittenPerCall} documents.*free tier.*nothing was written, narrow the filter`), 'its message gives the limit and what to do')
  t.equal(await count('many', sql<boolean>`body ? 'hit'`), 0, 'and nothing was written')

  const del = await run('try { await callTool(\'data:delete\', { collection: \'many\', filter: {} }); return \'deleted\' } catch (e) { return e.code }')
  t.equal(del.value, 'TOOL_ERROR', 'a delete over the row bound is refused')
  t.equal(await count('many'), FREE.maxRowsWrittenPerCall + 1, 'and deletes nothing')

  const within = await run('return await callTool(\'data:update\', { collection: \'many\', filter: { g: 0 }, set: { hit: true } })')
  t.same(within.value, { updated: Math.floor((FREE.maxRowsWrittenPerCall + 1) / 2) }, 'a narrower filter within the bound writes')

  // Two documents of 0.6 MB: each fits, both together are over the free tier's 1 MB.
  await seed('big', 2, 600 * 1024)
  const big = await run('try { await callTool(\'data:update\', { collection: \'big\', filter: {}, set: { hit: true } }); return \'written\' } catch (e) { return e.message }')
  t.match(big.value, /would write \d+ bytes: over the free tier's limit/, 'an update over the byte bound is refused')
  t.equal(await count('big', sql<boolean>`body ? 'hit'`), 0, 'and nothing was written')
  const one = await run('return await callTool(\'data:update\', { collection: \'big\', filter: { g: 1 }, set: { hit: true } })')
  t.same(one.value, { updated: 1 }, 'one of them is within the bound')
})

t.test('a queued run writes within its own tier\'s bounds, not the free fallback', async (t) => {
  const app = await sharedApp()
  const tenant = await createTenant(app, 'queued-writer', { tier: 'starter' })
  await withTenant(app.db, tenant.tenantId, async (trx) => {
    await sql`insert into documents (tenant_id, collection, body, created_by)
      select ${tenant.tenantId}, 'q', jsonb_build_object('g', g), 'seed' from generate_series(1, ${FREE.maxRowsWrittenPerCall + 1}) as g`.execute(trx)
  })
  const submitted = await app.inject({ method: 'POST', url: '/api/executions', headers: tenant.headers, payload: { code: "return await callTool('data:update', { collection: 'q', filter: {}, set: { hit: true } })" } })
  t.equal(submitted.statusCode, 202)
  const { executionId } = submitted.json() as { executionId: string }
  // The event stream ends with the run's `final` event.
  const stream = await app.inject({ method: 'GET', url: `/api/executions/${executionId}/events`, headers: { ...tenant.headers, accept: 'application/x-ndjson' } })
  const final = stream.body.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l)).at(-1)
  t.same(final?.data?.result?.value, { updated: FREE.maxRowsWrittenPerCall + 1 }, 'a starter tenant\'s queued run updates more than the free tier may')
})
