// The client against a real started service (the repository's server.ts on its embedded defaults).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createEnclaveClient, EnclaveError, type StreamEvent } from '../src/index.ts'
import { startService, type StartedService } from './started-service.ts'

let service: StartedService
let baseUrl = ''
let token: StartedService['token']

before(async () => {
  service = await startService()
  baseUrl = service.baseUrl
  token = (tenantId) => service.token(tenantId, 'client-test')
})
after(() => { service.stop() })

test('execute, submit and wait, get', async () => {
  const client = createEnclaveClient({ baseUrl, token: token('client-a') })
  const result = await client.execute('console.log("hi"); return 1 + 1')
  assert.equal(result.success, true)
  assert.equal(result.value, 2)
  assert.deepEqual(result.logs, [{ level: 'log', message: 'hi' }])
  const { executionId, status } = await client.submit('return "queued"', { idempotencyKey: 'once' })
  assert.equal(status, 'queued')
  assert.equal((await client.wait(executionId)).value, 'queued')
  assert.equal((await client.get(executionId)).status, 'succeeded')
  assert.equal((await client.submit('return "queued"', { idempotencyKey: 'once' })).executionId, executionId, 'the same key and body: the first execution')
  await assert.rejects(client.submit('return 2', { idempotencyKey: 'once' }), (err: { status?: number, body?: { code?: string } }) => err.status === 422 && err.body?.code === 'IDEMPOTENCY_KEY_REUSED', 'the same key with another body is refused')
})

test('events() resumes after a dropped connection: every event once, in order', async () => {
  let eventRequests = 0
  // The first events response is cut after its first line, as a dropped connection would be.
  const dropping: typeof fetch = async (input, init) => {
    const res = await fetch(input, init)
    if (!String(input).endsWith('/events') || eventRequests++ > 0 || res.body === null) return res
    const reader = res.body.getReader()
    const cut = new ReadableStream<Uint8Array>({
      async pull (controller) {
        const { value, done } = await reader.read()
        if (done || value === undefined) { controller.close(); return }
        const text = new TextDecoder().decode(value)
        const newline = text.indexOf('\n')
        if (newline >= 0) {
          controller.enqueue(new TextEncoder().encode(text.slice(0, newline + 1)))
          controller.close()
          await reader.cancel()
          return
        }
        controller.enqueue(value)
      }
    })
    return new Response(cut, { status: res.status, headers: res.headers })
  }
  const client = createEnclaveClient({ baseUrl, token: token('client-b'), fetch: dropping })
  const { executionId } = await client.submit('for (let i = 0; i < 5; i++) console.log("line " + i)\nreturn "done"')
  const seen: StreamEvent[] = []
  for await (const event of client.events(executionId)) seen.push(event)
  assert.ok(eventRequests >= 2, 'it reconnected')
  assert.deepEqual(seen.map((e) => e.seq), seen.map((_e, i) => i + 1))
  assert.deepEqual(seen.map((e) => e.type), ['queued', 'started', 'log', 'log', 'log', 'log', 'log', 'final'])
  const last = seen.at(-1)
  // The union narrows on `type`: the result needs no cast.
  assert.equal(last?.type === 'final' ? last.data.result.value : undefined, 'done')
})

test('cancel a running execution; a finished one cannot be cancelled; refusals throw EnclaveError', async () => {
  const client = createEnclaveClient({ baseUrl, token: token('client-c') })
  const { executionId } = await client.submit('while (true) {}')
  for (let i = 0; i < 200 && (await client.get(executionId)).status !== 'running'; i++) await new Promise((resolve) => setTimeout(resolve, 25))
  assert.equal(await client.cancel(executionId), true)
  const result = await client.wait(executionId)
  assert.equal(result.error?.code, 'CANCELLED')
  assert.equal(await client.cancel(executionId), false)
  await assert.rejects(client.get('00000000-0000-4000-8000-000000000000'), (err: unknown) => err instanceof EnclaveError && err.status === 404)
})

test('usage, audit and the list of executions', async () => {
  const client = createEnclaveClient({ baseUrl, token: token('client-d') })
  const { executionId } = await client.submit('return 3')
  assert.equal((await client.wait(executionId)).value, 3)
  assert.ok((await client.usage()).executions >= 1)
  assert.equal((await client.usageHistory(7)).days.length, 7)
  assert.ok((await client.list({ limit: 5 })).executions.some((e) => e.executionId === executionId))
  let entries = (await client.audit({ limit: 10 })).entries
  for (let i = 0; i < 50 && !entries.some((e) => e.executionId === executionId); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    entries = (await client.audit({ limit: 10 })).entries
  }
  assert.ok(entries.some((e) => e.executionId === executionId), 'audited')
  assert.equal((await client.executionAudit(executionId)).entry.executionId, executionId)
  await assert.rejects(client.executionAudit('no-such-execution'), (err: unknown) => err instanceof EnclaveError && err.status === 404 && err.code === 'NOT_FOUND')
})

test('approvals: a queued run waits at a gated call; approve() resumes it, reject() makes the script catch', async () => {
  const tenantId = 'client-approvals'
  const admin = service.token('platform', 'gateway', ['admin'])
  const setting = await fetch(`${baseUrl}/admin/tenants/${tenantId}/tools/data:insert`, { method: 'PUT', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ approval: 'always' }) })
  assert.equal(setting.status, 200)
  const runner = createEnclaveClient({ baseUrl, token: service.token(tenantId, 'alice', ['tool:data:insert', 'tool:data:query']) })
  const approver = createEnclaveClient({ baseUrl, token: service.token(tenantId, 'bob', ['approvals:decide']) })
  const code = "try { await callTool('data:insert', { document: { n: 1 } }) } catch (e) { return e.code } return 'inserted'"
  const pendingOf = async (executionId: string): Promise<string> => {
    for await (const event of runner.events(executionId)) {
      if (event.type === 'approval_required') return event.data.callId
    }
    throw new Error('the run ended without waiting')
  }
  const first = await runner.submit(code)
  const callId = await pendingOf(first.executionId)
  assert.equal((await runner.get(first.executionId)).status, 'awaiting_approval')
  await assert.rejects(runner.approve(first.executionId, callId), (err: { status?: number }) => err.status === 403, 'the run\'s own token may not decide')
  assert.equal((await approver.approve(first.executionId, callId)).status, 'queued')
  assert.equal((await runner.wait(first.executionId)).value, 'inserted')

  const second = await runner.submit(code)
  await approver.reject(second.executionId, await pendingOf(second.executionId), 'no')
  assert.equal((await runner.wait(second.executionId)).value, 'APPROVAL_REJECTED')
})
