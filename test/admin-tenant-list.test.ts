import t from 'tap'
import { randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import { adminHeaders, bearer, buildApp, tokenFor } from './helper.ts'
import { withTenant } from '../services/db/with-tenant.ts'
import { withAppRole } from '../services/db/with-app-role.ts'

t.test('GET /admin/tenants lists registered tenants, searches id and name, pages alphabetically', async (t) => {
  const app = await buildApp(t)
  const headers = adminHeaders()
  // One marker in every id and name of this test, so tenants of other test files never match.
  const u = `list${randomBytes(4).toString('hex')}`
  const ids = [`${u}-gamma`, `${u}-alpha`, `${u}-beta`]
  const names: Record<string, string | null> = { [ids[0] as string]: null, [ids[1] as string]: `Acme Widgets ${u}`, [ids[2] as string]: 'Bolt 50%_off' }
  for (const id of ids) {
    const res = await app.inject({ method: 'PUT', url: `/admin/tenants/${id}`, headers, payload: { tier: id.endsWith('beta') ? 'starter' : 'free', name: names[id] } })
    t.equal(res.statusCode, 200, `PUT ${id}`)
  }
  // Looked at but never registered: not a row, so not listed.
  t.equal((await app.inject({ url: `/admin/tenants/${u}-nobody`, headers })).statusCode, 200)

  const list = async (query: string): Promise<{ tenants: Array<{ tenantId: string, name: string | null, tier: string, createdAt: string }>, nextAfter: string | null }> => {
    const res = await app.inject({ url: `/admin/tenants?${query}`, headers })
    t.equal(res.statusCode, 200, query)
    return res.json()
  }

  const all = await list(`search=${u}`)
  t.same(all.tenants.map((x) => x.tenantId), [`${u}-alpha`, `${u}-beta`, `${u}-gamma`], 'alphabetical by id; the unregistered one is not listed')
  t.match(all.tenants[1], { tenantId: `${u}-beta`, name: 'Bolt 50%_off', tier: 'starter' })
  t.ok(!Number.isNaN(Date.parse(all.tenants[0]?.createdAt ?? '')), 'with when it was registered')
  t.equal(all.nextAfter, null, 'one page')

  t.same((await list(`search=${u.toUpperCase()}-ALPHA`)).tenants.map((x) => x.tenantId), [`${u}-alpha`], 'the id, case-insensitively')
  t.same((await list(`search=${encodeURIComponent(`widgets ${u}`)}`)).tenants.map((x) => x.tenantId), [`${u}-alpha`], 'the name, case-insensitively')
  t.same((await list(`search=${encodeURIComponent(`${u}%`)}`)).tenants, [], '% is a character, not a wildcard')
  t.same((await list(`search=${encodeURIComponent('50%_off')}`)).tenants.map((x) => x.tenantId), [`${u}-beta`], '% and _ match themselves')

  const first = await list(`search=${u}&limit=2`)
  t.same(first.tenants.map((x) => x.tenantId), [`${u}-alpha`, `${u}-beta`])
  t.equal(first.nextAfter, `${u}-beta`)
  const second = await list(`search=${u}&limit=2&after=${first.nextAfter ?? ''}`)
  t.same(second.tenants.map((x) => x.tenantId), [`${u}-gamma`], 'the next page starts after the last one')
  t.equal(second.nextAfter, null)

  const everyone = await list('limit=100')
  t.ok(everyone.tenants.length >= 3, 'without a search, every tenant')

  t.test('admin only; bad queries are 400s', async (t) => {
    t.equal((await app.inject({ url: '/admin/tenants' })).statusCode, 401)
    t.equal((await app.inject({ url: '/admin/tenants', headers: bearer(tokenFor({ tenantId: ids[0] as string })) })).statusCode, 403, 'a tenant token cannot list tenants')
    for (const query of ['limit=0', 'limit=101', 'limit=x', 'after=bad%20id', 'owner=me', `search=${'x'.repeat(201)}`]) {
      const res = await app.inject({ url: `/admin/tenants?${query}`, headers })
      t.equal(res.statusCode, 400, query)
      t.equal(res.json().code, 'BAD_REQUEST', query)
    }
  })

  t.test('the directory policy does not widen what a tenant transaction sees or writes', async (t) => {
    const seen = await withTenant(app.db, ids[0] as string, async (trx) => await trx.selectFrom('tenants').select('tenant_id').execute())
    t.same(seen.map((r) => r.tenant_id), [ids[0]], 'a tenant sees its own row only')
    // A tenant transaction cannot turn the directory on: its settings are not its code's to change.
    await t.rejects(withTenant(app.db, ids[0] as string, async (trx) => {
      await sql`select set_config('app.tenant_directory', 'on', true)`.execute(trx)
    }), { name: 'TenantScopeError' })
    // And with the directory setting on, writes still pass tenant_isolation alone.
    const updated = await withAppRole(app.db, async (trx) => {
      const result = await trx.updateTable('tenants').set({ name: 'taken over' }).where('tenant_id', '=', ids[1] as string).executeTakeFirst()
      return Number(result.numUpdatedRows)
    }, { 'app.tenant_directory': 'on', 'app.tenant_id': ids[0] as string })
    t.equal(updated, 0, 'no other tenant\'s row can be updated')
    t.match((await app.inject({ url: `/admin/tenants/${ids[1] as string}`, headers })).json(), { name: `Acme Widgets ${u}` })
  })
})
