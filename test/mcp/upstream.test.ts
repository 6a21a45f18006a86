// A remote MCP server (examples/mcp-upstream, a real process-local HTTP server on loopback)
// registered by an admin on the started service, its tools called from scripts as tenants, with
// the assertion verified upstream against the service's JWKS.
import { createServer } from 'node:net'
import t from 'tap'
import { adminHeaders, bearer, tokenFor, uniqueTenantId } from '../helper.ts'
import { startServer, type ServerProcess } from '../support/server-process.ts'
import { waitFor } from '../support/wait-for.ts'
import { startMcpUpstream } from '../../examples/mcp-upstream/server.ts'
import { connectClient, structured, textOf } from './mcp-client.ts'

/** A loopback port nothing listens on. */
async function closedPort (): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as { port: number }
  await new Promise<void>((resolve) => probe.close(() => { resolve() }))
  return port
}

const NOTES_TOOLS = ['tool:notes:add_note', 'tool:notes:list_notes', 'tool:notes:whoami', 'tool:notes:fail']

t.test('a remote MCP server as platform tools', async (t) => {
  // The upstream reads the service's JWKS at its first request, once the service has a port.
  const enclave = { url: '' }
  const upstream = await startMcpUpstream({ enclaveUrl: () => enclave.url })
  t.teardown(upstream.close)
  const deadOrigin = `http://127.0.0.1:${await closedPort()}`
  const server: ServerProcess = await startServer({ ENCLAVE_RUNNERS: '1', RATE_LIMIT_PER_MINUTE: '100000', TOOL_UPSTREAMS: `${upstream.origin},${deadOrigin}` }, (fn) => { t.teardown(fn) })
  const base = server.url
  enclave.url = base
  const admin = { ...adminHeaders(), 'content-type': 'application/json' }
  const register = async (body: unknown): Promise<{ status: number, json: any }> => {
    const res = await fetch(`${base}/admin/mcp-servers`, { method: 'POST', headers: admin, body: JSON.stringify(body) })
    return { status: res.status, json: await res.json() }
  }

  t.test('refused as HTTP tools are: an origin not in TOOL_UPSTREAMS, link-local, unreachable', async (t) => {
    const foreign = await register({ name: 'evil', url: 'http://10.0.0.1:9/mcp', prefix: 'evil' })
    t.equal(foreign.status, 400)
    t.equal(foreign.json.code, 'MCP_SERVER_REFUSED')
    t.match(foreign.json.error, /TOOL_UPSTREAMS/)
    const metadata = await register({ name: 'meta', url: 'http://169.254.169.254/mcp', prefix: 'meta' })
    t.equal(metadata.status, 400)
    t.equal(metadata.json.code, 'MCP_SERVER_REFUSED')
    const dead = await register({ name: 'dead', url: `${deadOrigin}/mcp`, prefix: 'dead' })
    t.equal(dead.status, 502)
    t.equal(dead.json.code, 'MCP_SERVER_UNREACHABLE')
    const none = await fetch(`${base}/admin/mcp-servers`, { headers: adminHeaders() })
    t.same(((await none.json()) as { servers: unknown[] }).servers, [], 'nothing was registered')
  })

  t.test('registered, its tools are platform tools in search, .d.ts and scripts; the assertion is verified upstream', async (t) => {
    const registered = await register({ name: 'notes', url: upstream.url, prefix: 'notes', defaultEnabled: true, headers: { 'x-api-key': 'k1' } })
    t.equal(registered.status, 200, JSON.stringify(registered.json))
    t.same(registered.json.tools.sort(), ['notes:add_note', 'notes:fail', 'notes:list_notes', 'notes:wait', 'notes:whoami'])
    const listed = await (await fetch(`${base}/admin/mcp-servers`, { headers: adminHeaders() })).json() as { servers: Array<{ name: string, headerNames: string[] }> }
    t.match(listed.servers, [{ name: 'notes', headerNames: ['x-api-key'] }])
    t.equal(upstream.callers.at(-1)?.tenantId, 'platform', 'tools/list went out with the platform\'s own assertion')

    const tenantA = uniqueTenantId('mcp-up-a')
    const tenantB = uniqueTenantId('mcp-up-b')
    const a = await connectClient(`${base}/mcp`, tokenFor({ tenantId: tenantA, userId: 'alice', permissions: NOTES_TOOLS }))
    const b = await connectClient(`${base}/mcp`, tokenFor({ tenantId: tenantB, userId: 'bob', permissions: NOTES_TOOLS }))
    t.teardown(a.close)
    t.teardown(b.close)
    // The catalogue is cached for TENANT_CACHE_TTL_MS; the registration announced the change.
    const found = await waitFor(async () => {
      const res = await a.client.callTool({ name: 'search_tools', arguments: { query: 'note' } })
      const names = (structured(res).tools as Array<{ name: string }>).map((tool) => tool.name)
      return names.includes('notes:add_note') ? names : undefined
    }, { message: 'the notes tools are searchable' })
    t.ok(found?.includes('notes:list_notes'))
    t.match(textOf(await a.client.callTool({ name: 'describe_tools', arguments: { names: ['notes:add_note'] } })), /text: string/)

    const ran = await a.client.callTool({ name: 'execute_script', arguments: { code: 'const n = await callTool("notes:add_note", { text: "from A" }); const all = await callTool("notes:list_notes", {}); const me = await callTool("notes:whoami", {}); return { id: n.id, count: all.notes.length, me }' } })
    t.notOk(ran.isError, textOf(ran))
    const value = structured(ran).value
    t.equal(value.count, 1)
    t.match(value.me, { tenantId: tenantA, userId: 'alice', tool: 'notes:whoami', executionId: structured(ran).executionId })
    const seen = upstream.callers.filter((caller) => caller.tenantId === tenantA)
    t.same(seen.map((caller) => caller.tool), ['notes:add_note', 'notes:list_notes', 'notes:whoami'], 'each call carried its own verified assertion')

    const other = await b.client.callTool({ name: 'execute_script', arguments: { code: 'return (await callTool("notes:list_notes", {})).notes.length' } })
    t.equal(structured(other).value, 0, 'tenant B does not see tenant A\'s notes')

    const failed = await a.client.callTool({ name: 'execute_script', arguments: { code: 'await callTool("notes:fail", { message: "no such note" })' } })
    t.equal(structured(failed).error.code, 'TOOL_ERROR')
    t.match(structured(failed).error.message, /no such note/)

    const badArgs = await a.client.callTool({ name: 'execute_script', arguments: { code: 'await callTool("notes:add_note", {})' } })
    t.equal(structured(badArgs).error.code, 'TOOL_ERROR', 'arguments are checked against the upstream inputSchema before any call')

    const audit = await waitFor(async () => {
      const res = await fetch(`${base}/api/audit/${String(structured(ran).executionId)}`, { headers: bearer(tokenFor({ tenantId: tenantA, permissions: [] })) })
      return res.status === 200 ? await res.json() as { toolCalls: Array<{ tool: string, code: string }> } : undefined
    }, { message: 'the run is audited' })
    t.same(audit?.toolCalls.map((call) => [call.tool, call.code]), [['notes:add_note', 'OK'], ['notes:list_notes', 'OK'], ['notes:whoami', 'OK']], 'the calls are in tool_calls')

    const refreshed = await fetch(`${base}/admin/mcp-servers/notes/refresh`, { method: 'POST', headers: adminHeaders() })
    t.equal(refreshed.status, 200)
    t.same(((await refreshed.json()) as { removed: string[] }).removed, [], 'a refresh keeps the tools it still lists')

    // The tool's byte cap and deadline hold as for HTTP tools: a 1 KB, 300 ms registration.
    const tiny = await register({ name: 'tiny', url: upstream.url, prefix: 'tiny', defaultEnabled: true, maxResponseKB: 1, timeoutMs: 300 })
    t.equal(tiny.status, 200)
    const big = await connectClient(`${base}/mcp`, tokenFor({ tenantId: tenantA, userId: 'alice', permissions: ['tool:tiny:add_note', 'tool:tiny:wait'] }))
    t.teardown(big.close)
    const capped = await waitFor(async () => {
      const res = await big.client.callTool({ name: 'execute_script', arguments: { code: 'await callTool("tiny:add_note", { text: "x".repeat(4000) })' } })
      return structured(res).error?.code === 'TOOL_ERROR' ? res : undefined
    }, { message: 'the capped tool is callable' })
    t.match(structured(capped).error.message, /over 1 KB/)
    const started = performance.now()
    const slow = await big.client.callTool({ name: 'execute_script', arguments: { code: 'await callTool("tiny:wait", { ms: 5000 })' } })
    t.equal(structured(slow).error.code, 'TOOL_ERROR')
    t.match(structured(slow).error.message, /timed out after 300 ms/)
    t.ok(performance.now() - started < 3000, 'the call was cut off at its deadline')
    t.equal((await fetch(`${base}/admin/mcp-servers/tiny`, { method: 'DELETE', headers: adminHeaders() })).status, 204)

    // A server registered with approval 'always': each of its tools waits for a person's decision,
    // which the MCP endpoint's direct runs cannot: APPROVAL_REQUIRED, and the upstream is not called.
    const gated = await register({ name: 'gated', url: upstream.url, prefix: 'gated', defaultEnabled: true, approval: 'always' })
    t.equal(gated.status, 200)
    const stored = await (await fetch(`${base}/admin/tools/gated:add_note`, { headers: adminHeaders() })).json() as { approval: string }
    t.equal(stored.approval, 'always', 'the registration\'s approval is each tool\'s default')
    const g = await connectClient(`${base}/mcp`, tokenFor({ tenantId: tenantA, userId: 'alice', permissions: ['tool:gated:add_note'] }))
    t.teardown(g.close)
    const before = upstream.callers.length
    const refused = await waitFor(async () => {
      const res = await g.client.callTool({ name: 'execute_script', arguments: { code: 'await callTool("gated:add_note", { text: "needs a yes" })' } })
      return structured(res).error?.code === 'APPROVAL_REQUIRED' ? res : undefined
    }, { message: 'the gated tool is refused' })
    t.match(structured(refused).error.message, /gated:add_note/)
    t.equal(upstream.callers.length, before, 'the upstream never saw the gated call')
    t.equal((await fetch(`${base}/admin/mcp-servers/gated`, { method: 'DELETE', headers: adminHeaders() })).status, 204)

    const removed = await fetch(`${base}/admin/mcp-servers/notes`, { method: 'DELETE', headers: adminHeaders() })
    t.equal(removed.status, 204)
    const gone = await waitFor(async () => {
      const res = await a.client.callTool({ name: 'execute_script', arguments: { code: 'await callTool("notes:list_notes", {})' } })
      return structured(res).error?.code === 'TOOL_NOT_FOUND' ? res : undefined
    }, { message: 'the tools are gone' })
    t.ok(gone)
  })
})
