// /mcp through the SDK's own Client against the started service (server.ts in its own process,
// on loopback): the code-mode tools, tenancy, cancellation, quotas and rate limits.
import t from 'tap'
import { adminHeaders, bearer, tokenFor, uniqueTenantId } from '../helper.ts'
import { startServer } from '../support/server-process.ts'
import { waitFor } from '../support/wait-for.ts'
import { connectClient, structured, textOf } from './mcp-client.ts'

const DATA_TOOLS = ['tool:data:query', 'tool:data:insert', 'tool:data:update', 'tool:data:delete']
const RATE_LIMIT = 40

t.test('/mcp with the SDK client', async (t) => {
  const server = await startServer({ ENCLAVE_RUNNERS: '1', RATE_LIMIT_PER_MINUTE: String(RATE_LIMIT) }, (fn) => { t.teardown(fn) })
  const mcpUrl = `${server.url}/mcp`
  const admin = adminHeaders()
  const putTenant = async (tenantId: string, quotaOverrides: Record<string, number>): Promise<void> => {
    const res = await fetch(`${server.url}/admin/tenants/${tenantId}`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ tier: 'free', quotaOverrides }) })
    t.equal(res.status, 200, `tenant ${tenantId} created`)
  }

  t.test('unauthenticated: 401 with the resource metadata challenge; the metadata document; Origin and methods', async (t) => {
    const res = await fetch(mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }) })
    t.equal(res.status, 401)
    t.equal(res.headers.get('www-authenticate'), `Bearer resource_metadata="${server.url}/.well-known/oauth-protected-resource", realm="tenant-enclave"`)
    const bad = await fetch(mcpUrl, { method: 'POST', headers: { authorization: 'Bearer not-a-jwt', 'content-type': 'application/json' }, body: '{}' })
    t.equal(bad.status, 401)
    t.match(bad.headers.get('www-authenticate'), /^Bearer resource_metadata="/)
    const meta = await fetch(`${server.url}/.well-known/oauth-protected-resource`)
    t.same(await meta.json(), { resource: `${server.url}/mcp`, authorization_servers: [], bearer_methods_supported: ['header'] })
    const token = tokenFor({ tenantId: uniqueTenantId('mcp-origin'), permissions: DATA_TOOLS })
    const foreign = await fetch(mcpUrl, { method: 'POST', headers: { ...bearer(token), origin: 'https://evil.example.com', 'content-type': 'application/json' }, body: '{}' })
    t.equal(foreign.status, 403)
    t.equal(((await foreign.json()) as { code: string }).code, 'ORIGIN_NOT_ALLOWED')
    for (const method of ['GET', 'DELETE']) {
      const res = await fetch(mcpUrl, { method, headers: bearer(token) })
      t.equal(res.status, 405, `${method} is 405`)
      t.equal(res.headers.get('allow'), 'POST')
    }
  })

  t.test('describe_tools lists the sandbox modules a tenant may import, and gives their types on request', async (t) => {
    const { modules } = await (await fetch(`${server.url}/api/modules`, { headers: bearer(tokenFor({ tenantId: uniqueTenantId('mcp-mod'), permissions: DATA_TOOLS })) })).json() as { modules: Array<{ name: string, version: string }> }
    t.ok(modules.some((m) => m.name === 'zod'), 'the build offers zod')
    const tenantId = uniqueTenantId('mcp-mod')
    const { client, close } = await connectClient(mcpUrl, tokenFor({ tenantId, permissions: DATA_TOOLS }))
    t.teardown(close)
    const listed = textOf(await client.callTool({ name: 'describe_tools', arguments: { names: ['data:query'] } }))
    t.match(listed, /^\/\/ Sandbox modules scripts may import: `import \{ … \} from '[^']+'` at the top of the script, or `await import\('[^']+'\)` anywhere/m)
    for (const m of modules) t.match(listed, `//   ${m.name} ${m.version}`, `${m.name} and its version`)
    t.notMatch(listed, /declare module/, 'no module declarations unless asked')
    const zod = textOf(await client.callTool({ name: 'describe_tools', arguments: { modules: ['zod', 'lodash'] } }))
    t.match(zod, /^declare module 'zod' \{/m, "zod's declarations")
    t.notMatch(zod, /declare module 'date-fns'/, 'only those asked for')
    t.match(zod, /Not importable by scripts of this token: lodash/)
    // A tenant narrowed to date-fns: zod is neither listed nor described.
    const narrowedId = uniqueTenantId('mcp-mod-narrow')
    const put = await fetch(`${server.url}/admin/tenants/${narrowedId}`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ tier: 'free', sandboxModules: ['date-fns'] }) })
    t.equal(put.status, 200)
    const narrowed = await connectClient(mcpUrl, tokenFor({ tenantId: narrowedId, permissions: DATA_TOOLS }))
    t.teardown(narrowed.close)
    const text = textOf(await narrowed.client.callTool({ name: 'describe_tools', arguments: { modules: ['zod', 'date-fns'] } }))
    t.match(text, /\/\/ {3}date-fns /)
    t.notMatch(text, /\/\/ {3}zod /)
    t.match(text, /Not importable by scripts of this token: zod/)
    t.notMatch(text, /declare module 'zod'/)
    t.match(text, /^declare module 'date-fns' \{/m)
  })

  t.test('list, search, describe, check and run a script that inserts and queries', async (t) => {
    const tenantId = uniqueTenantId('mcp-a')
    const { client, logs, close } = await connectClient(mcpUrl, tokenFor({ tenantId, permissions: DATA_TOOLS }))
    t.teardown(close)
    const { tools } = await client.listTools()
    t.same(tools.map((tool) => tool.name), ['search_tools', 'describe_tools', 'check_script', 'execute_script'])
    for (const tool of tools) {
      t.equal(tool.annotations?.readOnlyHint, tool.name !== 'execute_script', `${tool.name} readOnlyHint`)
      t.ok(tool.description !== undefined && tool.description.length > 40, `${tool.name} is described for a model`)
    }
    t.equal(tools.find((tool) => tool.name === 'execute_script')?.outputSchema?.type, 'object')

    const search = await client.callTool({ name: 'search_tools', arguments: { query: 'query' } })
    t.same(structured(search).tools.map((tool: { name: string }) => tool.name), ['data:query'])
    t.match(structured(search).tools[0].description, /\S/)
    const limited = await client.callTool({ name: 'search_tools', arguments: { query: 'data', limit: 2 } })
    t.equal(structured(limited).tools.length, 2)

    const described = await client.callTool({ name: 'describe_tools', arguments: { names: ['data:insert', 'data:query'] } })
    const dts = await (await fetch(`${server.url}/api/tools.d.ts`, { headers: bearer(tokenFor({ tenantId, permissions: ['tool:data:insert', 'tool:data:query'] })) })).text()
    t.ok(textOf(described).startsWith(dts), 'the same generator as /api/tools.d.ts')
    t.match(textOf(await client.callTool({ name: 'describe_tools', arguments: { names: ['nope:tool'] } })), /Not callable with this token.*nope:tool/)
    await t.rejects(client.callTool({ name: 'describe_tools', arguments: {} }), /give names \(tools, from search_tools\) or modules/)

    const checked = await client.callTool({ name: 'check_script', arguments: { code: 'return await callTool("data:query", {}); await callTool("other:tool", {})' } })
    t.equal(structured(checked).ok, false)
    t.same(structured(checked).errors.map((e: { code: string }) => e.code), ['TOOL_NOT_FOUND'], 'a name no tool has')
    t.match(structured(checked).toolCalls, [{ name: 'data:query', permitted: true, exists: true }, { name: 'other:tool', permitted: false }])

    const progress: number[] = []
    const ran = await client.callTool({
      name: 'execute_script',
      arguments: {
        language: 'typescript',
        code: `const id: string = 'n1'
console.log('inserting', id)
await callTool('data:insert', { collection: 'notes', document: { id, text: 'hello' } })
const found = await callTool('data:query', { collection: 'notes' })
return found.map((d: any) => d.text)`
      }
    }, undefined, { onprogress: (p) => { progress.push(p.progress) } })
    t.notOk(ran.isError, textOf(ran))
    const result = structured(ran)
    t.equal(result.success, true)
    t.same(result.value, ['hello'])
    t.equal(result.stats.toolCallCount, 2)
    t.same(result.logs, [{ level: 'log', message: 'inserting n1' }])
    t.match(textOf(ran), /^Returned: /)
    t.ok(logs.some((log) => log.logger === 'console' && log.data === 'inserting n1' && log.level === 'info'), 'console line as notifications/message')
    t.ok(logs.some((log) => log.logger === 'tool' && (log.data as { tool?: string }).tool === 'data:insert'), 'tool call as notifications/message')
    t.ok(progress.length >= 4, 'progress for each event')
    t.same(progress, [...progress].sort((a, b) => a - b), 'progress grows')

    const failed = await client.callTool({ name: 'execute_script', arguments: { code: 'throw new Error("boom")' } })
    t.equal(failed.isError, true, 'a failed run is a tool result with isError')
    t.equal(structured(failed).error.code, 'EXECUTION_ERROR')
    t.match(textOf(failed), /^EXECUTION_ERROR: boom/)

    // logging/setLevel holds for the next requests (each is its own POST).
    await client.setLoggingLevel('error')
    const before = logs.length
    await client.callTool({ name: 'execute_script', arguments: { code: 'console.log("quiet"); console.error("loud")' } })
    t.same(logs.slice(before).map((log) => log.data), ['loud'], 'below the level set, nothing is sent')

    const audit = await waitFor(async () => {
      const res = await fetch(`${server.url}/api/audit`, { headers: bearer(tokenFor({ tenantId, permissions: [] })) })
      const body = await res.json() as { entries: Array<{ executionId: string, action: string }> }
      return body.entries.find((entry) => entry.executionId === result.executionId)
    }, { message: 'the run is audited' })
    t.equal(audit?.action, 'mcp.execute')

    await t.rejects(client.callTool({ name: 'execute_script', arguments: { code: '' } }), /Invalid arguments for execute_script/)
  })

  t.test('a request is answered with JSON unless something goes out before its result, then with SSE', async (t) => {
    const headers = { ...bearer(tokenFor({ tenantId: uniqueTenantId('mcp-json'), permissions: DATA_TOOLS })), 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' }
    const call = async (id: number, code: string, meta?: Record<string, unknown>): Promise<Response> => await fetch(mcpUrl, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'execute_script', arguments: { code }, ...(meta !== undefined ? { _meta: meta } : {}) } })
    })
    const quiet = await call(1, 'return 41 + 1')
    t.equal(quiet.status, 200)
    t.match(quiet.headers.get('content-type'), /^application\/json/)
    const answer = await quiet.json() as { id: number, result: { structuredContent: { value: unknown } } }
    t.equal(answer.id, 1)
    t.equal(answer.result.structuredContent.value, 42)

    const talking = await call(2, "console.log('on the way'); return 1")
    t.equal(talking.status, 200)
    t.equal(talking.headers.get('content-type'), 'text/event-stream')
    const events = (await talking.text()).split('\n\n').filter((event) => event !== '').map((event) => JSON.parse(event.split('\n').find((line) => line.startsWith('data: '))!.slice(6)))
    t.same(events.map((event) => event.method ?? 'result'), ['notifications/message', 'result'])
    t.equal(events[0].params.data, 'on the way')
    t.equal(events[1].id, 2)

    const progress = await call(3, 'return 1', { progressToken: 'p' })
    t.equal(progress.headers.get('content-type'), 'text/event-stream', 'a progress token: the run reports its start')
    t.match(await progress.text(), /notifications\/progress[\s\S]*"id":3/)

    const badVersion = await fetch(mcpUrl, { method: 'POST', headers: { ...headers, 'mcp-protocol-version': '1999-01-01' }, body: JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'ping' }) })
    t.equal(badVersion.status, 400, 'an unsupported protocol version is still refused (by the SDK\'s transport)')
  })

  t.test('tenant A never sees tenant B\'s tools or rows', async (t) => {
    const a = await connectClient(mcpUrl, tokenFor({ tenantId: uniqueTenantId('mcp-iso-a'), permissions: DATA_TOOLS }))
    const b = await connectClient(mcpUrl, tokenFor({ tenantId: uniqueTenantId('mcp-iso-b'), permissions: ['tool:data:query'] }))
    t.teardown(a.close)
    t.teardown(b.close)
    await a.client.callTool({ name: 'execute_script', arguments: { code: 'await callTool("data:insert", { collection: "secrets", document: { v: "A only" } })' } })
    const seen = await b.client.callTool({ name: 'execute_script', arguments: { code: 'return (await callTool("data:query", { collection: "secrets" })).length' } })
    t.equal(structured(seen).value, 0, 'B reads none of A\'s rows')
    const own = await a.client.callTool({ name: 'execute_script', arguments: { code: 'return (await callTool("data:query", { collection: "secrets" })).length' } })
    t.equal(structured(own).value, 1)
    t.same(structured(await b.client.callTool({ name: 'search_tools', arguments: { query: 'data' } })).tools.map((tool: { name: string }) => tool.name), ['data:query'], 'B searches only its own callable tools')
    const denied = await b.client.callTool({ name: 'execute_script', arguments: { code: 'await callTool("data:insert", { collection: "x", document: {} })' } })
    t.equal(structured(denied).error.code, 'PERMISSION_DENIED')
  })

  t.test('a cancelled call ends the run CANCELLED within 100 ms and frees its slot', async (t) => {
    const tenantId = uniqueTenantId('mcp-cancel')
    await putTenant(tenantId, { maxConcurrentExecutions: 1, maxExecutionDurationMs: 20_000 })
    const token = tokenFor({ tenantId, permissions: DATA_TOOLS })
    const { client, close } = await connectClient(mcpUrl, token)
    t.teardown(close)
    const controller = new AbortController()
    let started = false
    const call = client.callTool({ name: 'execute_script', arguments: { code: 'while (true) {}' } }, undefined, {
      signal: controller.signal,
      onprogress: (p) => { if (p.message === 'started') started = true }
    })
    await waitFor(() => started, { message: 'the run started' })
    controller.abort()
    await t.rejects(call)
    // The slot is free again: the next run is admitted (the tenant may hold one at a time).
    const next = await waitFor(async () => {
      const res = await client.callTool({ name: 'execute_script', arguments: { code: 'return 2' } })
      return res.isError === true ? undefined : res
    }, { timeout: 3000, interval: 10, message: 'the slot is freed' })
    t.equal(structured(next).value, 2)
    const entry = await waitFor(async () => {
      const res = await fetch(`${server.url}/api/audit`, { headers: bearer(token) })
      const body = await res.json() as { entries: Array<{ executionId: string, errorCode: string | null, action: string }> }
      return body.entries.find((e) => e.errorCode === 'CANCELLED')
    }, { message: 'the cancelled run is audited' })
    t.equal(entry?.action, 'mcp.execute')
    // Measured in the service, from the cancel reaching the run to the run's end (its log lines'
    // times), so the client's and the network's delays under load do not count.
    const times = await waitFor(() => {
      const lines = server.output().split('\n').filter((line) => line.includes(entry?.executionId ?? '-')).map((line) => JSON.parse(line) as { time: number, msg: string })
      const cancelledAt = lines.find((line) => line.msg === 'execution cancelled by the mcp client')?.time
      const finishedAt = lines.find((line) => line.msg === 'execution finished')?.time
      return cancelledAt !== undefined && finishedAt !== undefined ? { cancelledAt, finishedAt } : undefined
    }, { message: 'the service logged the cancel and the end' })
    const took = (times?.finishedAt ?? Infinity) - (times?.cancelledAt ?? 0)
    t.ok(took <= 100, `it ended ${took} ms after the cancel reached it`)
  })

  t.test('quotas and 429s are the REST API\'s', async (t) => {
    const tenantId = uniqueTenantId('mcp-quota')
    await putTenant(tenantId, { maxExecutionsPerDay: 1 })
    const token = tokenFor({ tenantId, permissions: DATA_TOOLS })
    const { client, close } = await connectClient(mcpUrl, token)
    t.teardown(close)
    t.notOk((await client.callTool({ name: 'execute_script', arguments: { code: 'return 1' } })).isError)
    const refused = await client.callTool({ name: 'execute_script', arguments: { code: 'return 1' } })
    t.equal(refused.isError, true)
    const rest = await fetch(`${server.url}/api/execute`, { method: 'POST', headers: { ...bearer(token), 'content-type': 'application/json' }, body: JSON.stringify({ code: 'return 1' }) })
    t.equal(rest.status, 429)
    const restBody = await rest.json() as { code: string }
    t.match(textOf(refused), new RegExp(`^${restBody.code}: `))
    t.same(JSON.parse(textOf(refused).split('\n')[1] ?? ''), restBody, 'the same refusal body as POST /api/execute')

    // The per-minute request limit counts /mcp and /api alike, per tenant, and answers the same 429.
    const limited = tokenFor({ tenantId: uniqueTenantId('mcp-rate'), permissions: [] })
    const ping = async (): Promise<Response> => await fetch(mcpUrl, { method: 'POST', headers: { ...bearer(limited), 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }) })
    const first = await ping()
    t.equal(first.status, 200)
    t.equal(first.headers.get('x-ratelimit-limit'), String(RATE_LIMIT), 'the rate limit headers go out with the SDK\'s response')
    for (let i = 1; i < RATE_LIMIT; i++) t.equal((await ping()).status, 200)
    const over = await ping()
    t.equal(over.status, 429)
    const overRest = await fetch(`${server.url}/api/usage`, { headers: bearer(limited) })
    t.equal(overRest.status, 429)
    const [mcpBody, restLimited] = [await over.json() as Record<string, unknown>, await overRest.json() as Record<string, unknown>]
    t.same(Object.keys(mcpBody).sort(), Object.keys(restLimited).sort())
    t.equal(mcpBody.code, 'RATE_LIMITED')
    t.equal(mcpBody.code, restLimited.code)
  })
})
