import t from 'tap'
import type { Transaction } from 'kysely'
import { buildApp, uniqueTenantId } from '../helper.ts'
import { withTenant, type TenantTrx } from '../../services/db/with-tenant.ts'
import { listToolSettings } from '../../services/tools/tool-settings.ts'
import type { Database } from '../../services/db/schema.ts'

// Issue 9 item 3: code that needs RLS takes a TenantTrx, and only withTenant makes one.
// `npm run lint` type-checks this file: the expect-error lines fail it if a bare transaction or
// connection is ever accepted again.
export function typeChecks (plain: Transaction<Database>, scoped: TenantTrx): void {
  // @ts-expect-error a plain transaction has no tenant scope
  void listToolSettings(plain)
  // @ts-expect-error nor has the Kysely instance itself
  void listToolSettings(plain as unknown as import('kysely').Kysely<Database>)
  void listToolSettings(scoped)
}

t.test('tool settings are written through the registry, which drops its cache', async (t) => {
  const app = await buildApp(t, { TENANT_CACHE_TTL_MS: '3600000' })
  const tenantId = uniqueTenantId('registry')
  t.equal((await app.tools.get(tenantId, 'data:query'))?.enabled, true, 'no setting: enabled (and now cached)')
  const stored = await app.tools.putSetting(tenantId, 'data:query', { enabled: false, rateLimit: { calls: 2, windowMs: 1000 } })
  t.match(stored, { tool: 'data:query', enabled: false, rateLimit: { calls: 2, windowMs: 1000 }, config: {} })
  t.match(await app.tools.get(tenantId, 'data:query'), { enabled: false, rateLimit: { calls: 2, windowMs: 1000 } }, 'seen at once despite an hour of cache')
  const rows = await withTenant(app.db, tenantId, listToolSettings)
  t.same(rows.map((row) => [row.tool, row.enabled]), [['data:query', false]], 'stored under the tenant\'s RLS')
  t.equal(await app.tools.deleteSetting(tenantId, 'data:query'), true)
  t.match(await app.tools.get(tenantId, 'data:query'), { enabled: true, rateLimit: null }, 'back to the default at once')
  t.equal(await app.tools.deleteSetting(tenantId, 'data:query'), false, 'nothing left to delete')
})
