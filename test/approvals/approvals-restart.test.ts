// A run waiting for approval survives a restart of every instance (CI's pass on the real
// PostgreSQL and Redis): the instance it waited on is closed, a new one on the same database and
// Redis shows it waiting, takes the decisions, resumes it and ends it, each insert once.
import t from 'tap'
import { buildApp } from '../helper.ts'
import { waitFor } from '../support/wait-for.ts'
import { decide, documents, gatedTenant, pendingOf, reaches, submit, view } from '../support/approvals.ts'

const { DATABASE_URL, REDIS_URL } = process.env
if (DATABASE_URL !== undefined && REDIS_URL !== undefined) {
  t.test('a waiting run across a restart', async (t) => {
    // A queue of this file's own: other files' apps on the same Redis run workers too.
    const env = { EXECUTION_QUEUE_NAME: `approvals-restart-${Date.now().toString(36)}` }
    const first = await buildApp(t, env)
    const tenant = await gatedTenant(first, 'restart-wait')
    const id = await submit(first, tenant, `
      await callTool('data:insert', { document: { n: 1 } })
      await callTool('data:insert', { document: { n: 2 } })
      return (await callTool('data:query', {})).length`)
    await reaches(first, tenant, id, 'awaiting_approval')
    t.same(await pendingOf(first, id, 1), ['call-0'])
    await first.close()

    const second = await buildApp(t, env)
    t.equal((await view(second, tenant, id)).status, 'awaiting_approval', 'still waiting on the new instance')
    t.same(await pendingOf(second, id, 1), ['call-0'])
    await decide(second, tenant, id, { approveAll: true })
    await waitFor(async () => (await pendingOf(second, id)).includes('call-1'), { message: 'the second call waits', timeout: 30_000 })
    t.equal(await documents(second, tenant), 1)
    await decide(second, tenant, id, { approveAll: true })
    t.equal((await reaches(second, tenant, id, 'succeeded')).result?.value, 2)
    t.equal(await documents(second, tenant), 2, 'each insert once')
  })
} else {
  t.pass('a restart keeps a waiting run only where Redis keeps its record: this runs in the pass on PostgreSQL and Redis')
}
