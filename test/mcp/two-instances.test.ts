// /mcp is stateless: a client's POSTs may land on different instances. A cancel sent to one
// instance stops the call running on the other (through Redis pub/sub). Needs REDIS_URL.
import t from 'tap'
import { bearer, tokenFor, uniqueTenantId } from '../helper.ts'
import { startServer, type ServerProcess } from '../support/server-process.ts'

const { REDIS_URL } = process.env

async function post (server: ServerProcess, headers: Record<string, string>, body: unknown): Promise<Response> {
  return await fetch(`${server.url}/mcp`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify(body)
  })
}

if (REDIS_URL !== undefined) {
  t.test('a notifications/cancelled sent to another instance ends the run CANCELLED', async (t) => {
    const teardown = (fn: () => unknown): void => { t.teardown(fn) }
    const env = { ENCLAVE_RUNNERS: '1', RATE_LIMIT_PER_MINUTE: '100000' }
    const [a, b] = await Promise.all([startServer(env, teardown), startServer(env, teardown)]) as [ServerProcess, ServerProcess]
    const headers = bearer(tokenFor({ tenantId: uniqueTenantId('mcp-two'), permissions: [] }))
    const init = await post(a, headers, { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'two', version: '1' } } })
    const session = init.headers.get('mcp-session-id')
    t.ok(session !== null, 'initialize names a session')
    await init.text()
    const scoped = { ...headers, 'mcp-session-id': session as string }
    const started = performance.now()
    const call = post(a, scoped, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'execute_script', arguments: { code: 'while (true) {}', timeoutMs: 4000 }, _meta: { progressToken: 'p' } } })
    const response = await call
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
    let text = ''
    // The first progress notification says the run started; then cancel it through instance B.
    while (!text.includes('"started"')) {
      const { value, done } = await reader.read()
      if (done) break
      text += value
    }
    const cancelled = await post(b, scoped, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7, reason: 'test' } })
    t.equal(cancelled.status, 202)
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      text += value
    }
    const result = text.split('\n').filter((line) => line.startsWith('data: ')).map((line) => JSON.parse(line.slice(6))).find((message) => message.id === 7)
    t.equal(result?.result?.structuredContent?.error?.code, 'CANCELLED')
    t.ok(performance.now() - started < 3500, 'well before its 4 s timeout')
  })
}
