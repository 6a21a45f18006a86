// SIGTERM during a 1 s execution: the client gets its result, the audit row is written, exit 0.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import pg from 'pg'
import { PGlite } from '@electric-sql/pglite'
import { tokenFor, uniqueTenantId } from '../helper.ts'
import { startServer } from '../support/server-process.ts'

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
  const response = fetch(`http://127.0.0.1:${port}/api/execute`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokenFor({ tenantId })}`, 'content-type': 'application/json' },
    body: JSON.stringify({ code: 'const end = Date.now() + 1000; while (Date.now() < end) {} return "finished"' })
  })
  // SIGTERM once the server is working on the request (it logs it), however slow the machine.
  const deadline = Date.now() + 20_000
  while (!server.output().includes('"url":"/api/execute"') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  await new Promise((resolve) => setTimeout(resolve, 100))
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
