// What a tenant keeps is bounded by its tier's storageBytes and storageDocuments: the counter
// row moves in the same statement as the documents, so concurrent inserts at the edge never pass
// the bound, a delete frees what it removed, and another tenant's storage never moves.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { adminHeaders, buildApp, createTenant, type TestTenant } from '../helper.ts'
import { TIER_QUOTAS } from '../../services/tenants/tiers.ts'

interface Storage { bytes: number, documents: number, limitBytes: number, limitDocuments: number }

async function storage (app: FastifyInstance, tenant: TestTenant): Promise<Storage> {
  const res = await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })
  if (res.statusCode !== 200) throw new Error(`usage: ${res.statusCode} ${res.body}`)
  return res.json().storage
}

// A document whose stored text is exactly 9 + pad.length bytes: {"k": "xxx"}.
const INSERT = (pad: number): string => `
  try { await callTool('data:insert', { document: { k: 'x'.repeat(${pad}) } }); return 'ok' }
  catch (e) { return e.code + ' ' + e.message }`

async function setQuotas (app: FastifyInstance, tenant: TestTenant, quotaOverrides: Record<string, number>): Promise<void> {
  const res = await app.inject({ method: 'PUT', url: `/admin/tenants/${tenant.tenantId}`, headers: adminHeaders(), payload: { tier: 'enterprise', quotaOverrides: { maxConcurrentExecutions: 30, ...quotaOverrides } } })
  if (res.statusCode !== 200) throw new Error(res.body)
}

t.test('storage bound', async (t) => {
  const app = await buildApp(t)

  t.test('tiers and usage: small for free; a new tenant keeps nothing', async (t) => {
    t.same([TIER_QUOTAS.free.storageBytes, TIER_QUOTAS.free.storageDocuments], [10 * 1024 * 1024, 10_000])
    const tenant = await createTenant(app, 'st-new')
    t.same(await storage(app, tenant), { bytes: 0, documents: 0, limitBytes: 10 * 1024 * 1024, limitDocuments: 10_000 })
    t.equal((await tenant.execute(INSERT(91))).json().value, 'ok')
    t.same(await storage(app, tenant), { bytes: 100, documents: 1, limitBytes: 10 * 1024 * 1024, limitDocuments: 10_000 }, 'the document\'s JSON text, as stored')
  })

  t.test('20 concurrent inserts at the document bound: exactly the room left is taken, never more', async (t) => {
    const tenant = await createTenant(app, 'st-docs')
    await setQuotas(app, tenant, { storageDocuments: 10 })
    for (let i = 0; i < 4; i++) t.equal((await tenant.execute(INSERT(11))).json().value, 'ok')
    const results = await Promise.all(Array.from({ length: 20 }, async () => (await tenant.execute(INSERT(11))).json().value as string))
    t.equal(results.filter((v) => v === 'ok').length, 6, 'exactly the 6 that fit')
    const refused = results.filter((v) => v !== 'ok')
    t.equal(refused.length, 14)
    t.ok(refused.every((v) => v.startsWith('TOOL_ERROR STORAGE_QUOTA_EXCEEDED: this document (20 bytes) would take the tenant past its storage limit of ')), refused[0])
    t.match(refused[0], /nothing was written\. Delete documents no longer needed \(data:delete\), or ask an admin for a larger tier$/)
    t.same(await storage(app, tenant), { bytes: 200, documents: 10, limitBytes: TIER_QUOTAS.enterprise.storageBytes, limitDocuments: 10 })
    const count = await tenant.execute("return (await callTool('data:query', { limit: 1000 })).length")
    t.equal(count.json().value, 10, 'the documents stored are the ones counted')
  })

  t.test('20 concurrent inserts at the byte bound; a delete frees; another tenant is untouched', async (t) => {
    const tenant = await createTenant(app, 'st-bytes')
    const other = await createTenant(app, 'st-other')
    t.equal((await other.execute(INSERT(41))).json().value, 'ok')
    const before = await storage(app, other)
    // Room for 7 documents of 50 bytes, and 49 bytes besides: the 8th never fits.
    await setQuotas(app, tenant, { storageBytes: 7 * 50 + 49 })
    const results = await Promise.all(Array.from({ length: 20 }, async () => (await tenant.execute(INSERT(41))).json().value as string))
    t.equal(results.filter((v) => v === 'ok').length, 7)
    t.ok(results.filter((v) => v !== 'ok').every((v) => v.startsWith('TOOL_ERROR STORAGE_QUOTA_EXCEEDED: this document (50 bytes) would take the tenant past its storage limit of 399 bytes')))
    t.same(await storage(app, tenant), { bytes: 350, documents: 7, limitBytes: 399, limitDocuments: TIER_QUOTAS.enterprise.storageDocuments })

    const deleted = await tenant.execute("return await callTool('data:delete', { filter: { k: 'x'.repeat(41) } })")
    t.same(deleted.json().value, { deleted: 7 })
    t.same(await storage(app, tenant), { bytes: 0, documents: 0, limitBytes: 399, limitDocuments: TIER_QUOTAS.enterprise.storageDocuments }, 'the delete freed all of it')
    t.equal((await tenant.execute(INSERT(41))).json().value, 'ok', 'and inserts fit again')
    t.same(await storage(app, other), before, 'the other tenant\'s storage never moved')
  })

  t.test('an update moves the counter by what it adds or frees, and cannot pass the bound', async (t) => {
    const tenant = await createTenant(app, 'st-update')
    await setQuotas(app, tenant, { storageBytes: 100 })
    t.equal((await tenant.execute(INSERT(11))).json().value, 'ok')
    // {"k": "x...x", "more": "yyyyy"} is the 20 bytes above, less its "}", plus `, "more": "yyyyy"}`: 37.
    const grew = await tenant.execute("return await callTool('data:update', { filter: {}, set: { more: 'yyyyy' } })")
    t.same(grew.json().value, { updated: 1 })
    t.equal((await storage(app, tenant)).bytes, 37)
    const tooBig = await tenant.execute("try { await callTool('data:update', { filter: {}, set: { more: 'y'.repeat(80) } }) } catch (e) { return e.code + ' ' + e.message }")
    t.match(tooBig.json().value, /^TOOL_ERROR STORAGE_QUOTA_EXCEEDED: this update \(75 bytes more\) would take the tenant past its storage limit of 100 bytes/)
    t.equal((await storage(app, tenant)).bytes, 37, 'a refused update writes nothing')
    const shrank = await tenant.execute("return await callTool('data:update', { filter: {}, set: { more: '' } })")
    t.same(shrank.json().value, { updated: 1 })
    t.same(await storage(app, tenant), { bytes: 32, documents: 1, limitBytes: 100, limitDocuments: TIER_QUOTAS.enterprise.storageDocuments })
    const stored = await tenant.execute("return (await callTool('data:query', {}))[0].more")
    t.equal(stored.json().value, '')
  })

  t.test('concurrent deletes of the same documents free them once', async (t) => {
    const tenant = await createTenant(app, 'st-race')
    await setQuotas(app, tenant, {})
    for (let i = 0; i < 5; i++) t.equal((await tenant.execute(INSERT(11))).json().value, 'ok')
    const deletes = await Promise.all(Array.from({ length: 6 }, async () => (await tenant.execute("return (await callTool('data:delete', { filter: {} })).deleted")).json().value as number))
    t.equal(deletes.reduce((a, b) => a + b, 0), 5, 'each document deleted once')
    t.same(await storage(app, tenant), { bytes: 0, documents: 0, limitBytes: TIER_QUOTAS.enterprise.storageBytes, limitDocuments: TIER_QUOTAS.enterprise.storageDocuments })
    t.equal((await tenant.execute(INSERT(11))).json().value, 'ok')
    t.equal((await storage(app, tenant)).bytes, 20, 'the counter is exact after the race')
  })
})
