// A waiting run's journal comes back from PostgreSQL exactly as it was stored: replay hands the
// script its recorded results, so a result whose keys came back in another order (as jsonb would
// store them) could change what the script does next and make the resumed run diverge.
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { createTenant, sharedApp } from '../helper.ts'
import { loadJournal, saveJournal } from '../../services/executions/approvals/journal-store.ts'
import type { RunJournal } from '../../services/executions/approvals/run-journal.ts'
import { TIER_QUOTAS } from '../../services/tenants/tiers.ts'

t.test('a stored journal reads back byte for byte: key order, numbers and strings as recorded', async (t) => {
  const app = await sharedApp()
  const tenant = await createTenant(app, 'journal-store')
  const executionId = randomUUID()
  // An upstream's answer in its own key order, not the order jsonb sorts keys into.
  const upstreamAnswer = { zeta: 1, alpha: { b: 2, a: 1 }, b: 1.5, list: [{ y: 1, x: 2 }] }
  const journal: RunJournal = {
    version: 1,
    calls: [
      { position: 0, callId: 'call-0', tool: 'crm:lookup', argsJson: '{"query":{"z":1,"a":2}}', outcome: { ok: true, value: upstreamAnswer } },
      { position: 1, callId: 'call-1', tool: 'crm:delete', argsJson: '{"id":"c-1"}' }
    ],
    drawn: [0.123456789012345, 1796680000000.5],
    logLines: 2,
    grants: [],
    starts: 1
  }
  const job = { executionId, tenantId: tenant.tenantId, userId: 'u', permissions: ['tool:crm:lookup'], code: 'return 1', timeoutMs: 5000 }
  t.equal(await saveJournal(app.db, tenant.tenantId, executionId, { journal, job, expiresAt: new Date(Date.now() + 60_000) }, TIER_QUOTAS.free.storageBytes), undefined, 'kept')
  const stored = await loadJournal(app.db, tenant.tenantId, executionId)
  t.equal(JSON.stringify(stored?.journal), JSON.stringify(journal), 'the journal is the same text it was')
  t.same(Object.keys((stored?.journal.calls[0]?.outcome as { value: Record<string, unknown> }).value), ['zeta', 'alpha', 'b', 'list'], 'the recorded result keeps the upstream\'s key order')
  t.equal(await loadJournal(app.db, 'another-tenant', executionId), undefined, 'another tenant reads no journal of this run (RLS)')
})
