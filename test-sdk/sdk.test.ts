// Drives a running service through the SDK @hey-api/openapi-ts generates from its own OpenAPI
// document (npm run test:sdk generates it into dist/sdk first, then type-checks this file and
// the SDK with --strict): what an SDK user writes, with no cast, including the typed errors.
// Outside test/: the root lint and `npm test` run before any SDK exists.
import t from 'tap'
import { createClient } from '../dist/sdk/client/index.ts'
import {
  cancelExecution, getExecution, getUsage, listAudit, listExecutions, runScript, streamExecutionEvents, submitExecution
} from '../dist/sdk/sdk.gen.ts'
import type { ErrorBody, ExecutionEvent, ExecutionResult } from '../dist/sdk/types.gen.ts'
import { startServer } from '../test/support/server-process.ts'
import { bearer, tokenFor, uniqueTenantId } from '../test/helper.ts'

const RATE_LIMIT = 40

t.test('the generated SDK against a running service', async (t) => {
  const server = await startServer({ ENCLAVE_RUNNERS: '1', RATE_LIMIT_PER_MINUTE: String(RATE_LIMIT) }, t.teardown)
  const tenantClient = (label: string) => createClient({ baseUrl: server.url, headers: bearer(tokenFor({ tenantId: uniqueTenantId(label) })) })
  const client = tenantClient('sdk')

  t.test('runScript answers an ExecutionResult', async (t) => {
    const { data, error, response } = await runScript({ client, body: { code: "console.log('hi'); return 1 + 1" } })
    t.equal(response?.status, 200)
    t.equal(error, undefined)
    const result: ExecutionResult | undefined = data
    t.equal(result?.success, true)
    t.equal(result?.value, 2)
    t.same(result?.logs, [{ level: 'log', message: 'hi' }])
  })

  t.test('submitExecution, then its events (typed by `type`), then getExecution and listExecutions', async (t) => {
    const submitted = await submitExecution({ client, body: { code: "console.log('working'); return 'done'" } })
    t.equal(submitted.response?.status, 202)
    t.match(submitted.response?.headers.get('location'), /^\/api\/executions\//)
    const id = submitted.data?.executionId
    if (id === undefined) throw new Error('no execution id')

    const { stream } = await streamExecutionEvents({ client, path: { id }, sseMaxRetryAttempts: 0 })
    const seen: ExecutionEvent['type'][] = []
    let logged: string | undefined
    let final: ExecutionResult | undefined
    for await (const event of stream) {
      seen.push(event.type)
      // The union narrows on `type`: no cast to read a log line or the result.
      if (event.type === 'log') logged = event.data.message
      if (event.type === 'final') { final = event.data.result; break }
    }
    t.equal(logged, 'working')
    t.equal(final?.value, 'done')
    t.ok(seen.includes('started'), `events: ${seen.join(', ')}`)

    const got = await getExecution({ client, path: { id } })
    t.equal(got.data?.status, 'succeeded')
    t.equal(got.data?.result?.value, 'done')
    const listed = await listExecutions({ client, query: { limit: 10 } })
    t.ok(listed.data?.executions.some((e) => e.executionId === id), 'listed')
  })

  t.test('cancelExecution stops a running one', async (t) => {
    const submitted = await submitExecution({ client, body: { code: 'while (true) {}', timeoutMs: 20_000 } })
    const id = submitted.data?.executionId
    if (id === undefined) throw new Error('no execution id')
    const cancelled = await cancelExecution({ client, path: { id } })
    t.equal(cancelled.response?.status, 202)
    t.equal(cancelled.data?.executionId, id)
    let status: string | undefined
    for (let i = 0; i < 50 && status !== 'cancelled'; i++) {
      status = (await getExecution({ client, path: { id } })).data?.status
      if (status !== 'cancelled') await new Promise((resolve) => setTimeout(resolve, 200))
    }
    t.equal(status, 'cancelled')
  })

  t.test('getUsage and listAudit', async (t) => {
    const usage = await getUsage({ client })
    t.ok((usage.data?.executions ?? 0) >= 1, 'the runs are counted')
    t.type(usage.data?.quotas.maxExecutionsPerDay, 'number')
    // The audit log is written in batches after the answer (docs/api.md): poll until it lands.
    let audit = await listAudit({ client, query: { limit: 50 } })
    for (let i = 0; i < 50 && (audit.data?.entries.length ?? 0) === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      audit = await listAudit({ client, query: { limit: 50 } })
    }
    t.equal(audit.response?.status, 200)
    t.ok((audit.data?.entries.length ?? 0) >= 1, 'the runs are audited')
    t.ok(audit.data?.entries.every((entry) => typeof entry.executionId === 'string'))
  })

  t.test('errors come back typed: 401, 404, 413, 429', async (t) => {
    const anonymous = createClient({ baseUrl: server.url })
    const unauthorized = await runScript({ client: anonymous, body: { code: 'return 1' } })
    t.equal(unauthorized.response?.status, 401)
    t.equal(unauthorized.error?.code, 'MISSING_TOKEN')

    const missing = await getExecution({ client, path: { id: '00000000-0000-4000-8000-000000000000' } })
    t.equal(missing.response?.status, 404)
    t.equal(missing.error?.code, 'NOT_FOUND')

    const tooLarge = await runScript({ client, body: { code: `return '${'x'.repeat(60 * 1024)}'` } })
    t.equal(tooLarge.response?.status, 413)
    t.equal(tooLarge.error?.code, 'CODE_TOO_LARGE')
    t.equal(tooLarge.error !== undefined && 'limit' in tooLarge.error ? tooLarge.error.limit : undefined, 50)

    // A tenant of its own, so the others' requests do not count against it.
    const busy = tenantClient('sdk-busy')
    let code: ErrorBody['code'] | undefined
    let retryAfter: string | null | undefined
    for (let i = 0; i <= RATE_LIMIT && code === undefined; i++) {
      const answer = await getUsage({ client: busy })
      if (answer.response?.status === 429 && 'error' in answer) {
        code = answer.error?.code
        retryAfter = answer.response.headers.get('retry-after')
      }
    }
    t.equal(code, 'RATE_LIMITED')
    t.match(retryAfter, /^\d+$/)
  })
})
