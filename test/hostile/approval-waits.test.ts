// A free tenant parks runs waiting for approval: each waiting run holds no slot and no place in
// the queue bound, and kept a record of up to 8 MiB for a day, outside the tenant's storage, so
// its 100 daily runs could park about 800 MB, again every day. Now its tier bounds how many wait
// at once (maxWaitingRuns, free 5) and their records count in its storage; a bystander's runs
// wait as before.
import t from 'tap'
import { buildApp } from '../helper.ts'
import { waitFor } from '../support/wait-for.ts'
import { auditOf, documents, gatedTenant, reaches, submit, view } from '../support/approvals.ts'
import { TIER_QUOTAS } from '../../services/tenants/tiers.ts'

// Each run reads, then asks for a gated insert of a kilobyte: it waits with a record.
const PARK = "await callTool('data:query', {}); await callTool('data:insert', { document: { pad: 'x'.repeat(1000) } }); return 'inserted'"

t.test('a free tenant cannot park more runs waiting for approval than its tier allows', async (t) => {
  // The test reads its runs' status often while they settle: not the request rate's to refuse.
  const app = await buildApp(t, { RATE_LIMIT_PER_MINUTE: '100000' })
  const attacker = await gatedTenant(app, 'park-attacker', { tier: 'free' })
  const bystander = await gatedTenant(app, 'park-bystander', { tier: 'free' })
  const bound = TIER_QUOTAS.free.maxWaitingRuns
  t.equal(bound, 5)

  // One more than the bound, all queued at once (they run one at a time: one slot).
  const ids: string[] = []
  for (let i = 0; i <= bound; i++) ids.push(await submit(app, attacker, PARK))
  const settled = await waitFor(async () => {
    const views = await Promise.all(ids.map(async (id) => await view(app, attacker, id)))
    return views.every((v) => v.status === 'awaiting_approval' || v.status === 'failed') ? views : undefined
  }, { message: 'every run waits or ends', timeout: 60_000, interval: 100 })
  const waiting = settled!.filter((v) => v.status === 'awaiting_approval')
  const refused = settled!.filter((v) => v.status === 'failed')
  t.equal(waiting.length, bound, 'exactly the bound waits')
  t.equal(refused.length, 1, JSON.stringify(refused.map((v) => v.result?.error)))
  t.equal(refused[0]?.result?.error?.code, 'APPROVAL_WAIT_LIMIT')
  t.match(refused[0]?.result?.error?.message, new RegExp(`${bound} runs of this tenant already wait, and its tier allows ${bound} at once \\(maxWaitingRuns\\)\\. Decide on waiting runs \\(POST /api/executions/:id/approvals\\) or cancel them \\(DELETE /api/executions/:id\\)`))
  t.equal((await auditOf(app, attacker.headers, refused[0]!.executionId)).entry.errorCode, 'APPROVAL_WAIT_LIMIT', 'the refused run is audited with its code')
  t.equal(await documents(app, attacker), 0, 'no gated insert acted')

  // What the waiting runs keep is the tenant's storage, well inside its bound.
  const usage = (await app.inject({ method: 'GET', url: '/api/usage', headers: attacker.headers })).json()
  t.ok(usage.storage.bytes > bound * 1000 && usage.storage.bytes < bound * TIER_QUOTAS.free.maxJournalBytes, `the ${bound} records count in storage (${usage.storage.bytes} bytes)`)
  t.equal(usage.storage.limitBytes, TIER_QUOTAS.free.storageBytes)

  // The bystander is unaffected: its run waits.
  const theirs = await submit(app, bystander, PARK)
  await reaches(app, bystander, theirs, 'awaiting_approval')

  // Cancelling one of its waiting runs gives the attacker one place back, and no more.
  t.equal((await app.inject({ method: 'DELETE', url: `/api/executions/${waiting[0]!.executionId}`, headers: attacker.headers })).statusCode, 202)
  const again = await submit(app, attacker, PARK)
  await reaches(app, attacker, again, 'awaiting_approval')
  const over = await submit(app, attacker, PARK)
  const failed = await reaches(app, attacker, over, 'failed')
  t.equal(failed.result?.error?.code, 'APPROVAL_WAIT_LIMIT')

  // Nothing left waiting behind the test: the shared database and Redis outlive it.
  for (const v of [...waiting.slice(1), { executionId: again }]) await app.inject({ method: 'DELETE', url: `/api/executions/${v.executionId}`, headers: attacker.headers })
  await app.inject({ method: 'DELETE', url: `/api/executions/${theirs}`, headers: bystander.headers })
})
