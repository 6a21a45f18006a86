// Queued runs across instances on the real PostgreSQL and Redis (CI's second pass): any instance
// watches or cancels any run, and a worker that dies mid-run loses only that run, after its lease.
import t from 'tap'
import { adminHeaders, bearer, tokenFor, uniqueTenantId } from '../helper.ts'
import { startServer, type ServerProcess } from '../support/server-process.ts'
import { call, startTwoInstances } from '../support/two-instances.ts'
import { proxyFor } from '../support/tcp-proxy.ts'
import { waitFor } from '../support/wait-for.ts'
import type { StreamEvent } from '../../schemas/execution-event.ts'
import { isClusterUrl } from '../../services/store/redis-connection.ts'

const ndjson = (text: string): StreamEvent[] => text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as StreamEvent)
// Heartbeats fill every 5 s of silence (a lease running out, a slow machine): they belong to the
// stream, repeat the last seq, and are no event of the run.
const withoutHeartbeats = (events: StreamEvent[]): StreamEvent[] => events.filter((e) => e.type !== 'heartbeat')

/** Reads the run's live events until one of `type` has arrived (the stream is left, the run goes on). */
async function seen (server: ServerProcess, executionId: string, headers: Record<string, string>, type: StreamEvent['type']): Promise<void> {
  const leave = new AbortController()
  const res = await fetch(`${server.url}/api/executions/${executionId}/events`, { headers: { ...headers, accept: 'application/x-ndjson' }, signal: leave.signal })
  const reader = (res.body as ReadableStream<Uint8Array>).pipeThrough(new TextDecoderStream()).getReader()
  let text = ''
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) throw new Error(`the stream ended before a ${type} event`)
      text += value
      if (ndjson(text.slice(0, text.lastIndexOf('\n') + 1)).some((e) => e.type === type)) return
    }
  } finally {
    leave.abort()
  }
}

const { DATABASE_URL, REDIS_URL } = process.env
if (DATABASE_URL !== undefined && REDIS_URL !== undefined) {
  t.test('executions across instances', async (t) => {
    // A queue of this file's own: other files' apps on the same Redis run workers too, and one of
    // them taking a run here would receive a cancel this file means to be missed.
    const queue = `two-instances-${Date.now().toString(36)}`
    const env = { ENCLAVE_RUNNERS: '1', RATE_LIMIT_PER_MINUTE: '100000', EXECUTION_LEASE_MS: '1500', EXECUTION_QUEUE_NAME: queue }
    const newTenant = async (server: ServerProcess, label: string): Promise<Record<string, string>> => {
      const tenantId = uniqueTenantId(label)
      const put = await call(server, 'PUT', `/admin/tenants/${tenantId}`, adminHeaders(), { tier: 'starter', quotaOverrides: { maxExecutionDurationMs: 20_000 } })
      t.equal(put.status, 200)
      return bearer(tokenFor({ tenantId }))
    }

    t.test('submitted on A, watched on B, cancelled on B', async (t) => {
      const [a, b] = await startTwoInstances(t, env)
      const headers = await newTenant(a, 'two-exec')
      const submitted = await call(a, 'POST', '/api/executions', headers, { code: 'while (true) {}' })
      t.equal(submitted.status, 202)
      const id = submitted.json.executionId as string
      const watching = call(b, 'GET', `/api/executions/${id}/events`, headers, undefined, { accept: 'application/x-ndjson' })
      await waitFor(async () => (await call(b, 'GET', `/api/executions/${id}`, headers)).json.status === 'running', { message: 'running somewhere' })
      t.equal((await call(b, 'DELETE', `/api/executions/${id}`, headers)).status, 202)
      const events = withoutHeartbeats(ndjson((await watching).text))
      t.same(events.map((e) => e.seq), events.map((_e, i) => i + 1))
      t.same(events.map((e) => e.type), ['queued', 'started', 'final'])
      t.match(events.at(-1)?.data, { result: { success: false, error: { code: 'CANCELLED' } } })
      t.equal((await call(a, 'GET', `/api/executions/${id}`, headers)).json.status, 'cancelled')
    })

    t.test('a worker killed mid-run: that run ends failed after its lease, nothing else is lost', async (t) => {
      // Stopped when this test ends: a worker left running would take the next test's runs.
      const own = (fn: () => unknown): void => { t.teardown(fn) }
      const api = await startServer({ ...env, SERVICE_ROLE: 'api' }, own)
      const victim = await startServer({ ...env, SERVICE_ROLE: 'worker' }, own)
      const headers = await newTenant(api, 'two-lost')
      const lost = (await call(api, 'POST', '/api/executions', headers, { code: 'while (true) {}' })).json.executionId as string
      await waitFor(async () => (await call(api, 'GET', `/api/executions/${lost}`, headers)).json.status === 'running', { message: 'the victim runs it' })
      await seen(api, lost, headers, 'started')
      victim.child.kill('SIGKILL')
      await victim.exited
      // Submitted while no worker lives: it waits in the queue, and must not be lost.
      const waiting = (await call(api, 'POST', '/api/executions', headers, { code: 'return "still here"' })).json.executionId as string
      const survivor = await startServer({ ...env, SERVICE_ROLE: 'worker' }, own)
      const events = ndjson((await call(api, 'GET', `/api/executions/${lost}/events`, headers, undefined, { accept: 'application/x-ndjson' })).text)
      t.same(withoutHeartbeats(events).map((e) => e.type), ['queued', 'started', 'final'])
      t.match(events.at(-1)?.data, { result: { success: false, error: { code: 'INTERNAL_ERROR' } } })
      t.equal((await call(api, 'GET', `/api/executions/${lost}`, headers)).json.status, 'failed')
      const rest = ndjson((await call(survivor, 'GET', `/api/executions/${waiting}/events`, headers, undefined, { accept: 'application/x-ndjson' })).text)
      t.match(rest.at(-1)?.data, { result: { success: true, value: 'still here' } })
      t.equal((await call(api, 'GET', `/api/executions/${lost}`, headers)).json.status, 'failed', 'never re-run')
      // The victim died before auditing it: the instance whose check ended it writes its entry.
      const auditOfLost = async (): Promise<Array<{ errorCode: string | null }>> => ((await call(api, 'GET', '/api/audit?limit=500', headers)).json.entries as Array<{ executionId: string, errorCode: string | null }>).filter((e) => e.executionId === lost)
      await waitFor(async () => (await auditOfLost()).length > 0, { message: 'the lost run is audited' })
      const entries = await auditOfLost()
      t.equal(entries.length, 1, 'one audit entry')
      t.match(entries, [{ errorCode: 'INTERNAL_ERROR' }], 'failed')
    })

    // The proxy stands in front of one server (a cluster client would go round it): this one
    // runs in CI's standalone Redis pass.
    if (!isClusterUrl(REDIS_URL)) {
      t.test('a cancel whose notice the running instance missed (its Redis link was down) takes effect once the link is back', async (t) => {
        const own = (fn: () => unknown): void => { t.teardown(fn) }
        const proxy = await proxyFor(REDIS_URL)
        t.teardown(async () => { await proxy.down() })
        // The default lease (30 s): the outage must not make the run look lost. Last in this file:
        // BullMQ's stalled check is one lock per queue, held for the longest interval that took
        // it, so a 30 s worker would delay the short-lease lost-run check above.
        const longLease = { ...env, EXECUTION_LEASE_MS: '30000' }
        const api = await startServer({ ...longLease, SERVICE_ROLE: 'api' }, own)
        const [worker, cutOff] = await Promise.all([
          startServer({ ...longLease, SERVICE_ROLE: 'worker', REDIS_URL: proxy.urlFor(REDIS_URL) }, own),
          startServer({ ...longLease, SERVICE_ROLE: 'api', REDIS_URL: proxy.urlFor(REDIS_URL) }, own)
        ]) as [ServerProcess, ServerProcess]
        const headers = await newTenant(api, 'two-cancel-relink')
        const id = (await call(api, 'POST', '/api/executions', headers, { code: 'while (true) {}' })).json.executionId as string
        await waitFor(async () => (await call(api, 'GET', `/api/executions/${id}`, headers)).json.status === 'running', { message: 'the worker runs it' })
        // The row says running a moment before the worker has written its started event to Redis.
        await seen(api, id, headers, 'started')
        await proxy.down()
        // An instance that cannot reach Redis cannot deliver the cancel: it says so.
        const refused = await call(cutOff, 'DELETE', `/api/executions/${id}`, headers)
        t.equal(refused.status, 503)
        t.match(refused.json, { error: 'Service unavailable', code: 'DEPENDENCY_UNAVAILABLE' })
        // The notice goes out while the worker is not subscribed: pub/sub alone would lose it.
        const del = await call(api, 'DELETE', `/api/executions/${id}`, headers)
        t.equal(del.status, 202)
        t.equal((await call(api, 'GET', `/api/executions/${id}`, headers)).json.status, 'running', 'nothing reached the worker yet')
        await proxy.up()
        const events = withoutHeartbeats(ndjson((await call(api, 'GET', `/api/executions/${id}/events`, headers, undefined, { accept: 'application/x-ndjson' })).text))
        t.same(events.map((e) => e.type), ['queued', 'started', 'final'])
        t.match(events.at(-1)?.data, { result: { success: false, error: { code: 'CANCELLED' } } })
        t.equal((await call(api, 'GET', `/api/executions/${id}`, headers)).json.status, 'cancelled')
        t.equal(worker.child.exitCode, null, 'the worker lives on')
      })
    }
  })
}
