// Approvals end to end through the HTTP API, the queue's worker and real isolates: a queued run
// that calls a gated tool waits (awaiting_approval), is decided on, resumes by replay and ends.
// The gated tool is data:insert (its approval set to always for the tenant), so the documents
// the tenant holds count the side effects: each must happen exactly once.
import t from 'tap'
import { adminHeaders, buildApp } from '../helper.ts'
import { waitFor } from '../support/wait-for.ts'
import { auditOf, decide, documents, eventsOf, gatedTenant, pendingOf, reaches, submit, view } from '../support/approvals.ts'

t.test('approvals end to end', async (t) => {
  const app = await buildApp(t)

  t.test('two gated calls between ordinary ones: waits twice, resumes twice, each insert once, console lines once', async (t) => {
    const tenant = await gatedTenant(app, 'flow-two', { tier: 'starter' })
    const id = await submit(app, tenant, `
      const before = await callTool('data:query', {})
      console.log('start')
      await callTool('data:insert', { document: { n: 1 } })
      const mid = await callTool('data:query', {})
      await callTool('data:insert', { document: { n: 2 } })
      const after = await callTool('data:query', {})
      console.log('end')
      return [before.length, mid.length, after.length]`)
    await reaches(app, tenant, id, 'awaiting_approval')
    t.same(await pendingOf(app, id, 1), ['call-1'])
    t.equal(await documents(app, tenant), 0, 'the gated insert did not act')
    t.equal((await decide(app, tenant, id, { decisions: [{ callId: 'call-1', approve: true }] })).execution.status, 'queued')
    await waitFor(async () => (await pendingOf(app, id)).includes('call-3'), { message: 'the second gated call waits', timeout: 30_000 })
    await reaches(app, tenant, id, 'awaiting_approval')
    t.equal(await documents(app, tenant), 1, 'the first insert happened once')
    await decide(app, tenant, id, { approveAll: true })
    const done = await reaches(app, tenant, id, 'succeeded')
    t.same(done.result?.value, [0, 1, 2])
    t.equal(await documents(app, tenant), 2, 'each insert happened exactly once')
    const events = await eventsOf(app, id)
    t.same(events.filter((e) => e.type === 'log').map((e) => e.data.message), ['start', 'end'], 'console lines are not sent twice')
    t.same(events.filter((e) => e.type === 'started').length, 3, 'three starts')
    t.same(events.map((e) => e.seq), events.map((_e, i) => i + 1), 'one gapless stream across the starts')
    const audit = await auditOf(app, tenant.headers, id)
    t.equal(audit.entry.success, true, 'one audit entry for the run, written at its end')
    t.same(audit.approvals.map((a) => [a.callId, a.decidedBy]), [['call-1', 'flow-two-approver'], ['call-3', 'flow-two-approver']])
    const usage = (await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })).json() as { executions: number }
    t.equal(usage.executions, 4, 'the run took one daily execution (its three document counts the others), not one per start')
  })

  t.test('a rejected call throws APPROVAL_REJECTED in the script, which catches it; the tool never acts', async (t) => {
    const tenant = await gatedTenant(app, 'flow-reject')
    const id = await submit(app, tenant, `
      try { await callTool('data:insert', { document: { n: 1 } }) } catch (e) { return 'caught ' + e.code + ': ' + e.message }
      return 'inserted'`)
    await reaches(app, tenant, id, 'awaiting_approval')
    await decide(app, tenant, id, { decisions: [{ callId: 'call-0', approve: false, reason: 'not today' }] })
    const done = await reaches(app, tenant, id, 'succeeded')
    t.match(done.result?.value, /^caught APPROVAL_REJECTED: .*not today/)
    t.equal(await documents(app, tenant), 0)
  })

  t.test('a batch: Promise.all of 40 gated calls waits once with 40 pending, one approveAll runs them, call 41 waits again', async (t) => {
    const tenant = await gatedTenant(app, 'flow-batch', { tier: 'enterprise' })
    const id = await submit(app, tenant, `
      await Promise.all(Array.from({ length: 40 }, (_, i) => callTool('data:insert', { document: { i } })))
      await callTool('data:insert', { document: { i: 40 } })
      return (await callTool('data:query', {})).length`)
    await reaches(app, tenant, id, 'awaiting_approval')
    t.equal((await pendingOf(app, id, 40)).length, 40)
    await decide(app, tenant, id, { approveAll: true })
    await waitFor(async () => (await pendingOf(app, id)).includes('call-40'), { message: 'call 41 waits', timeout: 30_000 })
    await reaches(app, tenant, id, 'awaiting_approval')
    t.same(await pendingOf(app, id, 1), ['call-40'])
    t.equal(await documents(app, tenant), 40, 'the 40 approved inserts ran, once each')
    await decide(app, tenant, id, { approveAll: true })
    t.equal((await reaches(app, tenant, id, 'succeeded')).result?.value, 41)
  })

  t.test('a grant: approveAll for the tool with maxCalls lets later calls run without waiting, then the next waits', async (t) => {
    const tenant = await gatedTenant(app, 'flow-grant', { tier: 'enterprise' })
    const id = await submit(app, tenant, `
      for (let i = 0; i < 41; i++) await callTool('data:insert', { document: { i } })
      return (await callTool('data:query', {})).length`)
    await reaches(app, tenant, id, 'awaiting_approval')
    t.same(await pendingOf(app, id, 1), ['call-0'])
    await decide(app, tenant, id, { approveAll: true, forTool: 'data:insert', maxCalls: 39 })
    await waitFor(async () => (await pendingOf(app, id)).includes('call-40'), { message: 'call 41 waits', timeout: 30_000 })
    t.equal(await documents(app, tenant), 40, 'one approved and 39 granted calls ran')
    await decide(app, tenant, id, { decisions: [{ callId: 'call-40', approve: true }] })
    t.equal((await reaches(app, tenant, id, 'succeeded')).result?.value, 41)
  })

  t.test('a waiting run holds no slot: another run of a one-slot tenant is admitted and ends meanwhile', async (t) => {
    const tenant = await gatedTenant(app, 'flow-slot', { tier: 'free' })
    const id = await submit(app, tenant, "await callTool('data:insert', { document: { n: 1 } }); return 'inserted'")
    await reaches(app, tenant, id, 'awaiting_approval')
    const usage = (await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })).json() as { concurrentExecutions: number }
    t.equal(usage.concurrentExecutions, 0)
    const other = await submit(app, tenant, 'return 5')
    t.equal((await reaches(app, tenant, other, 'succeeded')).result?.value, 5)
    t.equal((await view(app, tenant, id)).status, 'awaiting_approval')
    const direct = await tenant.execute('return 6')
    t.equal(direct.json().value, 6, 'a direct run too')
    await decide(app, tenant, id, { approveAll: true })
    t.equal((await reaches(app, tenant, id, 'succeeded')).result?.value, 'inserted')
  })

  t.test('a recorded tool result is replayed on resume, not read again, though the data changed meanwhile', async (t) => {
    const tenant = await gatedTenant(app, 'flow-recorded')
    const id = await submit(app, tenant, `
      const seen = (await callTool('data:query', {})).length
      await callTool('data:insert', { document: { seen } })
      return seen`)
    await reaches(app, tenant, id, 'awaiting_approval')
    // Another document appears meanwhile; the recorded query result still says 0, so replay holds.
    await app.inject({ method: 'PUT', url: `/admin/tenants/${tenant.tenantId}/tools/data:insert`, headers: adminHeaders(), payload: { approval: 'never' } })
    await tenant.execute("await callTool('data:insert', { document: { other: true } })")
    await decide(app, tenant, id, { approveAll: true })
    const done = await reaches(app, tenant, id, 'succeeded')
    t.equal(done.result?.value, 0, 'the recorded result was replayed, not read again')
  })
})
