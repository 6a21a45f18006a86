// SIGTERM during a 1 s execution: the client gets its result, the audit row is written, exit 0.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import pg from 'pg'
import { PGlite } from '@electric-sql/pglite'
import { tokenFor, uniqueTenantId } from '../helper.ts'
import { startServer } from '../support/server-process.ts'
import { waitFor } from '../support/wait-for.ts'

t.test('graceful shutdown on SIGTERM', async (t) => {
  const pgliteDir = await mkdtemp(join(tmpdir(), 'enclave-shutdown-'))
  t.teardown(async () => { await rm(pgliteDir, { recursive: true, force: true }) })
  const server = await startServer({
    SHUTDOWN_GRACE_MS: '10000',
    ENCLAVE_RUNNERS: '1',
    PGLITE_DIR: process.env.DATABASE_URL === undefined ? pgliteDir : undefined
  }, (fn) => t.teardown(fn))
  const port = server.port

  const tenantId = uniqueTenantId('shutdown')
  const authorization = `Bearer ${tokenFor({ tenantId })}`
  const response = fetch(`http://127.0.0.1:${port}/api/execute`, {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/json' },
    body: JSON.stringify({ code: 'const end = Date.now() + 1000; while (Date.now() < end) {} return "finished"' })
  })
  // SIGTERM once the execution holds its slot (usage counts it), however slow the machine.
  await waitFor(async () => {
    const usage = await fetch(`http://127.0.0.1:${port}/api/usage`, { headers: { authorization } })
    return ((await usage.json()) as { concurrentExecutions?: number }).concurrentExecutions === 1
  }, { timeout: 20_000, message: 'the execution was admitted' })
  server.child.kill('SIGTERM')

  const res = await response
  t.equal(res.status, 200)
  const result = await res.json() as { success: boolean, value: string, executionId: string }
  t.match(result, { success: true, value: 'finished' })
  t.equal(await server.exited, 0, 'exit code 0', { output: server.output().slice(-3000) })
  t.match(server.output(), /shutting down/)

  // The audit row is in the database (read as the owner, scoped to the tenant like the app).
  let rows: Array<{ execution_id: string, success: boolean }>
  if (process.env.DATABASE_URL !== undefined) {
    const client = new pg.Client({ connectionString: process.env.DATABASE_ADMIN_URL ?? process.env.DATABASE_URL })
    await client.connect()
    try {
      await client.query("select set_config('app.tenant_id', $1, false)", [tenantId])
      rows = (await client.query('select execution_id, success from audit_log')).rows
    } finally { await client.end() }
  } else {
    const db = await PGlite.create(pgliteDir)
    try {
      rows = (await db.query<{ execution_id: string, success: boolean }>('select execution_id, success from audit_log where tenant_id = $1', [tenantId])).rows
    } finally { await db.close() }
  }
  t.same(rows, [{ execution_id: result.executionId, success: true }])
})
