// Queued executions over HTTP: submit → events → final → result; resume; idempotency; quotas;
// cancellation (running, awaiting a tool, queued, finished, another tenant's); streaming execute.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import type { FastifyInstance } from 'fastify'
import { randomUUID } from 'node:crypto'
import { buildApp, createTenant, type TestTenant } from '../helper.ts'
import { withTenant } from '../../services/db/with-tenant.ts'
import { getExecution } from '../../services/executions/execution-repository.ts'
import type { QueuedExecutionsDeps } from '../../services/executions/queued-executions.ts'
import { waitFor } from '../support/wait-for.ts'
import type { StreamEvent } from '../../schemas/execution-event.ts'

const ndjson = (body: string): StreamEvent[] => body.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as StreamEvent)
const sse = (body: string): Array<{ id?: string, event: StreamEvent }> => body.split('\n\n').filter((b) => b !== '').map((block) => {
  const id = /^id: (.*)$/m.exec(block)?.[1]
  const data = /^data: (.*)$/m.exec(block)?.[1] ?? 'null'
  return { ...(id !== undefined ? { id } : {}), event: JSON.parse(data) as StreamEvent }
})

async function submit (app: FastifyInstance, tenant: TestTenant, code: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return await app.inject({ method: 'POST', url: '/api/executions', headers: { ...tenant.headers, ...headers }, payload: { code, ...extra } })
}
async function events (app: FastifyInstance, tenant: TestTenant, id: string, query = '', headers: Record<string, string> = {}): Promise<StreamEvent[]> {
  const res = await app.inject({ method: 'GET', url: `/api/executions/${id}/events${query}`, headers: { ...tenant.headers, accept: 'application/x-ndjson', ...headers } })
  if (res.statusCode !== 200) throw new Error(`events: ${res.statusCode} ${res.body}`)
  return ndjson(res.body)
}
async function status (app: FastifyInstance, tenant: TestTenant, id: string): Promise<string> {
  const res = await app.inject({ method: 'GET', url: `/api/executions/${id}`, headers: tenant.headers })
  return (res.json() as { status: string }).status
}
/** The tenant's audit entries for one execution (the writer flushed first). */
async function auditOf (app: FastifyInstance, tenant: TestTenant, executionId: string): Promise<Array<{ executionId: string, action: string, errorCode: string | null }>> {
  await app.audit.flush()
  const res = await app.inject({ method: 'GET', url: '/api/audit?limit=500', headers: tenant.headers })
  return (res.json() as { entries: Array<{ executionId: string, action: string, errorCode: string | null }> }).entries.filter((e) => e.executionId === executionId)
}
/** The app's queued-run dependencies, to hold a run at a step a real run passes in a moment. */
const depsOf = (app: FastifyInstance): QueuedExecutionsDeps => (app.executions as unknown as { deps: QueuedExecutionsDeps }).deps
async function usage (app: FastifyInstance, tenant: TestTenant): Promise<{ executions: number, concurrentExecutions: number }> {
  return (await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })).json()
}

t.test('queued executions', async (t) => {
  const app = await buildApp(t, { ENCLAVE_RUNNERS: '1' })

  t.test('submit → events → final → result, numbered without gaps', async (t) => {
    const tenant = await createTenant(app, 'exec-flow', { permissions: ['tool:data:insert'] })
    const res = await submit(app, tenant, 'console.log("hello")\nawait callTool("data:insert", { document: { a: 1 } })\nconsole.warn("done")\nreturn 42')
    t.equal(res.statusCode, 202)
    const { executionId, status: first } = res.json() as { executionId: string, status: string }
    t.equal(first, 'queued')
    t.equal(res.headers.location, `/api/executions/${executionId}`)
    const all = await events(app, tenant, executionId)
    t.same(all.map((e) => e.seq), all.map((_e, i) => i + 1), 'seq runs 1, 2, 3... without gaps')
    t.same(all.map((e) => e.type), ['queued', 'started', 'log', 'tool_call', 'tool_result', 'log', 'final'])
    t.same(all[2]?.data, { level: 'log', message: 'hello' })
    t.same(all[3]?.data, { index: 1, tool: 'data:insert' })
    t.match(all[4]?.data, { index: 1, code: 'OK', durationMs: Number })
    const final = all.at(-1)!.data as { result: { success: boolean, value: unknown } }
    t.match(final.result, { executionId, success: true, value: 42 })
    const got = await app.inject({ method: 'GET', url: `/api/executions/${executionId}`, headers: tenant.headers })
    t.equal(got.statusCode, 200)
    t.match(got.json(), { executionId, status: 'succeeded', submittedAt: String, startedAt: String, finishedAt: String, result: { success: true, value: 42, logs: [{ level: 'log', message: 'hello' }, { level: 'warn', message: 'done' }] } })
    const list = await app.inject({ method: 'GET', url: '/api/executions?status=succeeded', headers: tenant.headers })
    t.match(list.json(), { executions: [{ executionId, status: 'succeeded' }], nextBefore: null })

    t.test('SSE: id is the seq; Last-Event-ID and ?after resume with exactly the rest', async (t) => {
      const full = await app.inject({ method: 'GET', url: `/api/executions/${executionId}/events`, headers: { ...tenant.headers, accept: 'text/event-stream' } })
      t.match(full.headers['content-type'], /^text\/event-stream/)
      const blocks = sse(full.body)
      t.same(blocks.map((b) => b.id), all.map((e) => String(e.seq)))
      t.same(blocks.map((b) => b.event), all)
      const resumed = await app.inject({ method: 'GET', url: `/api/executions/${executionId}/events`, headers: { ...tenant.headers, accept: 'text/event-stream', 'last-event-id': '3' } })
      t.same(sse(resumed.body).map((b) => b.event), all.slice(3))
      // Property: resuming after any seq yields exactly the events after it, once each, in order.
      await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: all.length }), fc.boolean(), async (after, byHeader) => {
        const rest = byHeader
          ? await events(app, tenant, executionId, '', { 'last-event-id': String(after) })
          : await events(app, tenant, executionId, `?after=${after}`)
        t.same(rest, all.slice(after))
        return JSON.stringify(rest) === JSON.stringify(all.slice(after))
      }), { numRuns: 25 })
    })
  })

  t.test('language: typescript passes through the queue; the worker strips the types', async (t) => {
    const tenant = await createTenant(app, 'exec-ts')
    const code = 'const n: number = 41\nreturn n + 1'
    const finalOf = async (extra: Record<string, unknown>) => {
      const res = await submit(app, tenant, code, extra)
      t.equal(res.statusCode, 202)
      const all = await events(app, tenant, (res.json() as { executionId: string }).executionId)
      return (all.at(-1)!.data as { result: { success: boolean, value?: unknown, error?: { code: string } } }).result
    }
    t.match(await finalOf({ language: 'typescript' }), { success: true, value: 42 })
    t.match(await finalOf({}), { success: false, error: { code: 'VALIDATION_ERROR' } }, 'the same code as JavaScript is a syntax error')
  })

  t.test('idempotency: 20 concurrent submissions with one key → one execution, one quota unit', async (t) => {
    const tenant = await createTenant(app, 'exec-idem')
    const before = await usage(app, tenant)
    const answers = await Promise.all(Array.from({ length: 20 }, async () => await submit(app, tenant, 'return 1', {}, { 'idempotency-key': 'order-7' })))
    t.same(answers.map((r) => r.statusCode), Array(20).fill(202))
    const ids = new Set(answers.map((r) => (r.json() as { executionId: string }).executionId))
    t.equal(ids.size, 1)
    const [id] = [...ids]
    await events(app, tenant, id!)
    const again = await submit(app, tenant, 'return 1', {}, { 'idempotency-key': 'order-7' })
    t.same(again.json(), { executionId: id, status: 'succeeded' })
    t.equal((await usage(app, tenant)).executions, before.executions + 1)
    const other = await submit(app, tenant, 'return 1', {}, { 'idempotency-key': 'order-8' })
    t.not((other.json() as { executionId: string }).executionId, id)
    const tooLong = await submit(app, tenant, 'return 1', {}, { 'idempotency-key': 'k'.repeat(129) })
    t.equal(tooLong.statusCode, 400)
  })

  t.test('code: "" is a 400, as on POST /api/execute and in a session frame (one body schema); nothing is queued', async (t) => {
    const tenant = await createTenant(app, 'exec-empty')
    const res = await submit(app, tenant, '')
    t.equal(res.statusCode, 400)
    t.match(res.json(), { error: 'Bad Request', code: 'BAD_REQUEST', message: 'code must not be empty' })
    t.equal((await usage(app, tenant)).executions, 0)
    t.same((await app.inject({ method: 'GET', url: '/api/executions', headers: tenant.headers })).json(), { executions: [], nextBefore: null })
  })

  t.test('quotas: the daily execution is consumed once, at submission; refusals run nothing', async (t) => {
    const tenant = await createTenant(app, 'exec-quota', { tier: 'free', quotaOverrides: { maxExecutionsPerDay: 2 } })
    const one = await submit(app, tenant, 'return 1')
    t.equal((await usage(app, tenant)).executions, 1)
    await events(app, tenant, (one.json() as { executionId: string }).executionId)
    t.equal((await usage(app, tenant)).executions, 1, 'running it consumed nothing more')
    t.equal((await submit(app, tenant, 'return 2')).statusCode, 202)
    const refused = await submit(app, tenant, 'return 3')
    t.equal(refused.statusCode, 429)
    t.match(refused.json(), { error: 'Execution quota exceeded', code: 'EXECUTION_QUOTA_EXCEEDED', limit: 2, reset: String })
    t.ok(refused.headers['retry-after'])
    const big = await submit(app, tenant, 'x'.repeat(51 * 1024))
    t.equal(big.statusCode, 413)
    t.match(big.json(), { code: 'CODE_TOO_LARGE', limit: 50 })
  })

  t.test('a submission that fails after its admission is not accepted, and gives back what it took', async (t) => {
    const tenant = await createTenant(app, 'exec-undo', { tier: 'free', quotaOverrides: { maxExecutionsPerDay: 5, maxConcurrentExecutions: 1 } })
    // The service's neighbours refuse, as Redis does when it goes away: the queue does not take
    // the job, or the record of the run is not kept. (PostgreSQL is not on this path at all.)
    const deps = depsOf(app)
    const unreachable = (): Error => Object.assign(new Error('unreachable'), { code: 'STORE_UNAVAILABLE' })
    const { add } = deps.queue
    const { records } = deps
    t.teardown(() => { deps.queue.add = add; deps.records = records })
    deps.queue.add = async () => { throw unreachable() }
    for (let i = 0; i < 3; i++) {
      const res = await submit(app, tenant, 'return 1')
      t.equal(res.statusCode, 503, 'the queue did not take it: not accepted')
      t.match(res.json(), { code: 'DEPENDENCY_UNAVAILABLE' })
    }
    deps.queue.add = add
    deps.records = Object.create(records, { accept: { value: async () => { throw unreachable() } } }) as typeof records
    for (let i = 0; i < 3; i++) t.equal((await submit(app, tenant, 'return 1')).statusCode, 503, 'the record was not kept: not accepted')
    deps.records = records
    t.equal((await usage(app, tenant)).executions, 0, 'no day\'s execution kept by a submission that failed')
    t.same((await app.inject({ method: 'GET', url: '/api/executions', headers: tenant.headers })).json().executions, [], 'no run left behind')
    // maxExecutionsPerDay 5 and a queue bound of 10: six failed submissions holding anything would show here.
    const ids: string[] = []
    for (let i = 0; i < 5; i++) {
      const res = await submit(app, tenant, 'return 1')
      t.equal(res.statusCode, 202)
      ids.push((res.json() as { executionId: string }).executionId)
    }
    for (const id of ids) t.equal((await events(app, tenant, id)).at(-1)?.type, 'final')
    t.equal((await submit(app, tenant, 'return 1')).statusCode, 429, 'the sixth is over the day\'s five')
  })

  t.test('QUEUE_FULL at 10 × maxConcurrentExecutions queued runs', async (t) => {
    const tenant = await createTenant(app, 'exec-full', { tier: 'free', quotaOverrides: { maxExecutionsPerDay: 1000, maxExecutionDurationMs: 20_000 } })
    const first = (await submit(app, tenant, 'while (true) {}')).json() as { executionId: string }
    await waitFor(async () => await status(app, tenant, first.executionId) === 'running', { message: 'the first run started' })
    const queued: string[] = []
    for (let i = 0; i < 10; i++) {
      const res = await submit(app, tenant, 'return 1')
      t.equal(res.statusCode, 202)
      queued.push((res.json() as { executionId: string }).executionId)
    }
    const used = (await usage(app, tenant)).executions
    const full = await submit(app, tenant, 'return 1')
    t.equal(full.statusCode, 429)
    t.same(full.json(), { error: 'Execution queue full: at most 10 queued runs', code: 'QUEUE_FULL', limit: 10 })
    t.equal((await usage(app, tenant)).executions, used, 'a submission refused as QUEUE_FULL takes none of the day\'s executions')
    t.equal((await app.inject({ method: 'GET', url: '/api/executions?limit=20', headers: tenant.headers })).json().executions.length, 11, 'nor leaves a row')
    // The queued ones wait for the slot; cancelling the runner lets them through, one at a time.
    t.equal((await app.inject({ method: 'DELETE', url: `/api/executions/${first.executionId}`, headers: tenant.headers })).statusCode, 202)
    for (const id of queued) t.equal((await events(app, tenant, id)).at(-1)?.type, 'final')
    t.same(await Promise.all(queued.map(async (id) => await status(app, tenant, id))), Array(10).fill('succeeded'))
  })

  t.test('cancel', async (t) => {
    const tenant = await createTenant(app, 'exec-cancel', { tier: 'free', quotaOverrides: { maxExecutionsPerDay: 1000, maxExecutionDurationMs: 20_000 } })
    const other = await createTenant(app, 'exec-other')

    t.test('a CPU-bound run ends CANCELLED, its slot is free at once, and it is audited', async (t) => {
      const { executionId } = (await submit(app, tenant, 'console.log("spinning"); try { while (true) {} } catch { return "caught" }')).json() as { executionId: string }
      await waitFor(async () => await status(app, tenant, executionId) === 'running', { message: 'running' })
      const del = await app.inject({ method: 'DELETE', url: `/api/executions/${executionId}`, headers: tenant.headers })
      t.equal(del.statusCode, 202)
      t.same(del.json(), { executionId })
      const all = await events(app, tenant, executionId)
      t.same(all.at(-1)?.data, { result: (all.at(-1)?.data as { result: unknown }).result })
      t.match(all.at(-1)?.data, { result: { success: false, error: { name: 'CancelledError', code: 'CANCELLED', message: 'The execution was cancelled' } } })
      t.equal(await status(app, tenant, executionId), 'cancelled')
      // free tier: one concurrent run. The cancelled run's slot is free, so this one is admitted.
      const next = await tenant.execute('return "next"')
      t.equal(next.statusCode, 200)
      t.equal(next.json().value, 'next')
      await app.audit.flush()
      const audit = (await app.inject({ method: 'GET', url: '/api/audit', headers: tenant.headers })).json() as { entries: Array<{ executionId: string, errorCode: string | null }> }
      t.match(audit.entries.find((e) => e.executionId === executionId), { executionId, errorCode: 'CANCELLED' })
      const again = await app.inject({ method: 'DELETE', url: `/api/executions/${executionId}`, headers: tenant.headers })
      t.equal(again.statusCode, 409)
      t.same(again.json(), { error: 'Execution already finished', code: 'EXECUTION_FINISHED' })
    })

    t.test('a queued run is cancelled before it starts', async (t) => {
      const running = (await submit(app, tenant, 'while (true) {}')).json() as { executionId: string }
      await waitFor(async () => await status(app, tenant, running.executionId) === 'running', { message: 'running' })
      const queued = (await submit(app, tenant, 'return "never"')).json() as { executionId: string }
      t.equal(await status(app, tenant, queued.executionId), 'queued')
      t.equal((await app.inject({ method: 'DELETE', url: `/api/executions/${queued.executionId}`, headers: tenant.headers })).statusCode, 202)
      const all = await events(app, tenant, queued.executionId)
      t.same(all.map((e) => e.type), ['queued', 'final'])
      t.match(all[1]?.data, { result: { success: false, error: { code: 'CANCELLED' } } })
      t.equal(await status(app, tenant, queued.executionId), 'cancelled')
      t.equal((await app.inject({ method: 'DELETE', url: `/api/executions/${running.executionId}`, headers: tenant.headers })).statusCode, 202)
      t.equal((await events(app, tenant, running.executionId)).at(-1)?.type, 'final')
      t.equal(await status(app, tenant, queued.executionId), 'cancelled', 'it never ran once the slot was free')
      t.match(await auditOf(app, tenant, queued.executionId), [{ action: 'code_execution', errorCode: 'CANCELLED' }])
      t.equal((await auditOf(app, tenant, queued.executionId)).length, 1, 'one audit entry')
    })

    t.test('another tenant\'s execution is 404 for GET, events and DELETE; a malformed id too', async (t) => {
      const { executionId } = (await submit(app, tenant, 'return 1')).json() as { executionId: string }
      for (const [method, url] of [['GET', `/api/executions/${executionId}`], ['GET', `/api/executions/${executionId}/events`], ['DELETE', `/api/executions/${executionId}`], ['GET', '/api/executions/not-a-uuid']] as const) {
        const res = await app.inject({ method, url, headers: other.headers })
        t.equal(res.statusCode, 404, `${method} ${url}`)
        t.same(res.json(), { error: 'Execution not found', code: 'NOT_FOUND' })
      }
      t.same((await app.inject({ method: 'GET', url: '/api/executions', headers: other.headers })).json(), { executions: [], nextBefore: null })
    })
  })

  /** A run as a worker leaves it once started: its record says running, its stream has `queued`. */
  async function runningRun (t: Test, tenant: TestTenant, codeSha256: string): Promise<string> {
    const executionId = randomUUID()
    const { records } = depsOf(app)
    await records.accept({ executionId, tenantId: tenant.tenantId, userId: 'u', status: 'queued', submittedAt: new Date().toISOString(), codeSha256, timeoutMs: 1000 })
    t.ok(await records.move(executionId, ['queued'], { status: 'running', startedAt: new Date().toISOString() }))
    await app.executionEvents.append(executionId, 'queued', {}, tenant.tenantId)
    return executionId
  }

  t.test('a run\'s `final` goes out before its record says so: GET, the list and DELETE already see the end, and the stream keeps one `final`', async (t) => {
    // The window between the two is a moment in a real run; here the record is held at `running`.
    const tenant = await createTenant(app, 'exec-final-first')
    const executionId = await runningRun(t, tenant, 'c')
    const result = { executionId, success: true, value: 7, logs: [], stats: { duration: 1, toolCallCount: 0 } }
    const final = await app.executionEvents.append(executionId, 'final', { result })

    const view = (await app.inject({ method: 'GET', url: `/api/executions/${executionId}`, headers: tenant.headers })).json() as { status: string, result?: { value: number }, finishedAt?: string }
    t.equal(view.status, 'succeeded', 'GET: the status the final says, not the record\'s running')
    t.equal(view.result?.value, 7, 'GET: the result')
    t.equal(view.finishedAt, final.at)
    const list = async (query: string): Promise<Array<{ executionId: string, status: string, result?: { value: number } }>> => {
      const res = await app.inject({ method: 'GET', url: `/api/executions${query}`, headers: tenant.headers })
      t.equal(res.statusCode, 200)
      return (res.json() as { executions: Array<{ executionId: string, status: string, result?: { value: number } }> }).executions
    }
    t.match(await list(''), [{ executionId, status: 'succeeded', finishedAt: final.at, result: { value: 7 } }], 'the list: the final\'s status and result too')
    t.same(await list('?status=running'), [], 'not listed as running: it has ended')
    const cancel = await app.inject({ method: 'DELETE', url: `/api/executions/${executionId}`, headers: tenant.headers })
    t.equal(cancel.statusCode, 409, 'DELETE: already finished')
    t.same((await events(app, tenant, executionId)).at(-1), final, 'the stream ends at its final')

    // A lost-run check that comes now (the run's instance died after its final) writes the run's
    // own result, and its INTERNAL_ERROR final is not appended.
    await app.executions.onLost({ executionId, tenantId: tenant.tenantId, userId: 'u', permissions: [], code: 'return 7', timeoutMs: 1000 })
    const row = await withTenant(app.db, tenant.tenantId, async (trx) => await getExecution(trx, executionId))
    t.equal(row?.status, 'succeeded', 'the row: the run\'s outcome')
    const stream = await events(app, tenant, executionId)
    t.same(stream.map((e) => e.type), ['queued', 'final'], 'one final')
    t.same(stream[1]?.data, { result }, 'the run\'s')
    const again = await app.executionEvents.append(executionId, 'final', { result: { ...result, value: 8 } })
    t.same(again, final, 'a second final is answered with the first')
    t.same(await auditOf(app, tenant, executionId), [], 'the lost-run check audits nothing: the run\'s own end came first')
  })

  t.test('a run found lost ends failed, and the check that ended it writes its one audit entry', async (t) => {
    const tenant = await createTenant(app, 'exec-lost-audit')
    const executionId = await runningRun(t, tenant, 'c0de')
    await app.executions.onLost({ executionId, tenantId: tenant.tenantId, userId: 'u', permissions: [], code: 'while (true) {}', timeoutMs: 1000 })
    t.equal(await status(app, tenant, executionId), 'failed')
    t.match(await auditOf(app, tenant, executionId), [{ executionId, action: 'code_execution', success: false, errorCode: 'INTERNAL_ERROR', codeSha256: 'c0de', toolCalls: 0 }])
    t.equal((await auditOf(app, tenant, executionId)).length, 1)
    // The check comes again (another instance's turn): the run has ended, nothing more is written.
    await app.executions.onLost({ executionId, tenantId: tenant.tenantId, userId: 'u', permissions: [], code: 'while (true) {}', timeoutMs: 1000 })
    t.equal((await auditOf(app, tenant, executionId)).length, 1, 'still one entry')
  })

  t.test('a run the service lost gives back the day\'s execution it took, once, however often the check comes', async (t) => {
    const tenant = await createTenant(app, 'exec-lost-refund')
    const today = async (): Promise<number> => (await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })).json().executions as number
    const before = await today()
    const res = await app.inject({ method: 'POST', url: '/api/executions', headers: tenant.headers, payload: { code: 'while (true) {}', timeoutMs: 3000 } })
    t.equal(res.statusCode, 202)
    const executionId = res.json().executionId as string
    await waitFor(async () => await status(app, tenant, executionId) === 'running', { message: 'it runs' })
    t.equal(await today(), before + 1, 'the submission took one of today\'s executions')
    const job = { executionId, tenantId: tenant.tenantId, userId: 'test-user', permissions: [], code: 'while (true) {}', timeoutMs: 3000 }
    await app.executions.onLost(job)
    t.equal(await status(app, tenant, executionId), 'failed')
    t.equal(await today(), before, 'given back')
    await app.executions.onLost(job)
    t.equal(await today(), before, 'a second check gives back nothing more')
  })

  t.test('a worker that takes a run already ended (cancelled while queued) never lets it act: no tool call, no event', async (t) => {
    // The run starts while its record is being marked running; the mark fails here, as it does
    // when a cancel wins that race, so the script's first tool call must never reach the tool.
    const tenant = await createTenant(app, 'exec-never-acts', { permissions: ['tool:data:insert', 'tool:data:query'] })
    const executionId = randomUUID()
    const cancelled = { executionId, success: false, error: { name: 'CancelledError', code: 'CANCELLED', message: 'The execution was cancelled' }, logs: [], stats: { duration: 0, toolCallCount: 0 } }
    const { records } = depsOf(app)
    await records.accept({ executionId, tenantId: tenant.tenantId, userId: 'u', status: 'queued', submittedAt: new Date().toISOString(), codeSha256: 'c', timeoutMs: 5000 })
    t.ok(await records.move(executionId, ['queued'], { status: 'cancelled', finishedAt: new Date().toISOString(), result: cancelled as never }))
    t.equal(await records.move(executionId, ['queued'], { status: 'running' }), undefined, 'a cancelled run is never marked running')
    await app.executionEvents.append(executionId, 'queued', {}, tenant.tenantId)
    await app.executionEvents.append(executionId, 'final', { result: cancelled })
    const outcome = await app.executions.runJob({ executionId, tenantId: tenant.tenantId, userId: 'u', permissions: ['tool:data:insert'], code: "console.log('acted')\nawait callTool('data:insert', { document: { acted: true } })\nreturn 1", timeoutMs: 5000 })
    t.same(outcome, { done: true })
    t.same((await events(app, tenant, executionId)).map((e) => e.type), ['queued', 'final'], 'no started, log or tool event')
    const docs = await app.inject({ method: 'POST', url: '/api/execute', headers: tenant.headers, payload: { code: "return (await callTool('data:query', {})).length" } })
    t.equal(docs.statusCode, 200, 'the slot of the stopped run is free when its job ends')
    t.equal((docs.json() as { value: number }).value, 0, 'the insert never ran')
    t.equal(await status(app, tenant, executionId), 'cancelled', 'the record keeps the cancel')
    t.equal((await usage(app, tenant)).concurrentExecutions, 0, 'its slot is free')
    t.same(await auditOf(app, tenant, executionId), [], 'the stopped run writes no audit entry: whoever ended it does')
  })

  t.test('GET /api/executions refuses a malformed before, status or limit with 400 and a message', async (t) => {
    const tenant = await createTenant(app, 'exec-list-bad')
    const { executionId } = (await submit(app, tenant, 'return 1')).json() as { executionId: string }
    await events(app, tenant, executionId)
    for (const [query, field] of [['before=not-a-uuid', 'before'], ['before=', 'before'], ['status=done', 'status'], ['limit=0', 'limit'], ['limit=201', 'limit'], ['limit=ten', 'limit']] as const) {
      const res = await app.inject({ method: 'GET', url: `/api/executions?${query}`, headers: tenant.headers })
      t.equal(res.statusCode, 400, query)
      t.match(res.json(), { error: 'Bad Request', code: 'BAD_REQUEST', message: new RegExp(`^query parameter '${field}' must`) }, query)
    }
    // A well-formed cursor is used as given; the first page's own cursor still pages on.
    const page = await app.inject({ method: 'GET', url: `/api/executions?limit=1&before=${executionId.toUpperCase()}`, headers: tenant.headers })
    t.equal(page.statusCode, 200)
    t.same(page.json(), { executions: [], nextBefore: null })
  })

  t.test('streaming POST /api/execute: the same events; leaving cancels the run', async (t) => {
    const tenant = await createTenant(app, 'exec-stream')
    const res = await app.inject({ method: 'POST', url: '/api/execute', headers: { ...tenant.headers, accept: 'application/x-ndjson' }, payload: { code: 'console.log("a"); return 5' } })
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^application\/x-ndjson/)
    const all = ndjson(res.body)
    t.same(all.map((e) => [e.seq, e.type]), [[1, 'started'], [2, 'log'], [3, 'final']])
    t.match(all[2]?.data, { result: { success: true, value: 5 } })
    const plain = await tenant.execute('return 6')
    t.equal(plain.json().value, 6, 'without the Accept header it answers JSON as before')
  })

  t.test('a tenant holds at most 2 × (10 + 1) × maxConcurrentExecutions event streams open on an instance: the next is 429', async (t) => {
    await app.listen({ port: 0, host: '127.0.0.1' })
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
    const tenant = await createTenant(app, 'exec-open-streams', { tier: 'free', quotaOverrides: { maxExecutionsPerDay: 1000, maxExecutionDurationMs: 30_000 } })
    const limit = 22
    const open = async (id: string, signal?: AbortSignal): Promise<Response> => await fetch(`${base}/api/executions/${id}/events`, { headers: { ...tenant.headers, accept: 'application/x-ndjson' }, ...(signal !== undefined ? { signal } : {}) })
    // Answers that end at once hold nothing: more 404s than the limit, all 404.
    for (let i = 0; i < limit + 3; i++) t.equal((await open(randomUUID())).status, 404)
    const { executionId } = (await submit(app, tenant, 'while (true) {}')).json() as { executionId: string }
    await waitFor(async () => await status(app, tenant, executionId) === 'running', { message: 'running' })
    const watchers = Array.from({ length: limit }, () => new AbortController())
    const streams = await Promise.all(watchers.map(async (w) => await open(executionId, w.signal)))
    t.same(streams.map((s) => s.status), streams.map(() => 200), `${limit} streams open`)
    const refused = await open(executionId)
    t.equal(refused.status, 429)
    t.match(await refused.json(), { code: 'RATE_LIMITED', limit })
    const other = await createTenant(app, 'exec-open-streams-other')
    const { executionId: theirs } = (await submit(app, other, 'return 1')).json() as { executionId: string }
    t.equal((await events(app, other, theirs)).at(-1)?.type, 'final', 'another tenant streams as before')
    // A watcher that leaves gives its place back.
    watchers[0]!.abort()
    await waitFor(async () => { const res = await open(executionId); const ok = res.status === 200; await res.body?.cancel(); return ok }, { message: 'a place is free again' })
    t.equal((await app.inject({ method: 'DELETE', url: `/api/executions/${executionId}`, headers: tenant.headers })).statusCode, 202)
    for (const stream of streams.slice(1)) t.equal(ndjson(await stream.text()).at(-1)?.type, 'final', 'every open stream ends with final')
    const again = await open(executionId)
    t.equal(again.status, 200, 'ended streams hold nothing')
    await again.text()
  })
})
