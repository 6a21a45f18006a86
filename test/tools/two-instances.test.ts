// Platform tool changes through one instance reach the other (pub/sub on the tools channel,
// the cache TTL as the bound when a notice is lost). Needs the real servers (.ci/run starts
// them): with the embedded defaults each instance would have its own database.
import t from 'tap'
import { adminHeaders, bearer, tokenFor, uniqueTenantId } from '../helper.ts'
import { call, HAS_SHARED_SERVERS, startTwoInstances } from '../support/two-instances.ts'
import { waitFor } from '../support/wait-for.ts'
import { startUpstream } from './fixtures/upstream.ts'

const CACHE_TTL_MS = 5000

if (HAS_SHARED_SERVERS) {
  t.test('a platform tool deleted through one instance is gone on the other within the cache TTL', async (t) => {
    const upstream = await startUpstream()
    t.teardown(upstream.close)
    const [a, b] = await startTwoInstances(t, { ENCLAVE_RUNNERS: '1', RATE_LIMIT_PER_MINUTE: '100000', TOOL_UPSTREAMS: upstream.origin, TENANT_CACHE_TTL_MS: String(CACHE_TTL_MS) })
    const admin = adminHeaders()
    const name = `two:${uniqueTenantId('tool')}`
    const tenantId = uniqueTenantId('two-ptool')
    const headers = bearer(tokenFor({ tenantId, permissions: [`tool:${name}`] }))
    const script = { code: `try { return await callTool(${JSON.stringify(name)}, { id: '1' }) } catch (e) { return e.code }` }

    t.equal((await call(b, 'POST', '/api/execute', headers, script)).json.value, 'TOOL_NOT_FOUND', 'B caches a catalogue without the tool')
    const put = await call(a, 'PUT', `/admin/tools/${name}`, admin, { description: 'x', argsSchema: { type: 'object' }, http: { method: 'GET', url: `${upstream.origin}/users/{id}` }, defaultEnabled: true })
    t.equal(put.status, 200)
    await waitFor(async () => (await call(b, 'POST', '/api/execute', headers, script)).json.value?.name === 'Ada',
      { timeout: CACHE_TTL_MS + 2000, interval: 100, message: 'B sees the new tool' })

    t.equal((await call(a, 'DELETE', `/admin/tools/${name}`, admin)).status, 204)
    await waitFor(async () => (await call(b, 'POST', '/api/execute', headers, script)).json.value === 'TOOL_NOT_FOUND',
      { timeout: CACHE_TTL_MS + 2000, interval: 100, message: 'B answers TOOL_NOT_FOUND within the cache TTL' })
    t.equal((await call(a, 'POST', '/api/execute', headers, script)).json.value, 'TOOL_NOT_FOUND', 'and so does A')
  })
}
