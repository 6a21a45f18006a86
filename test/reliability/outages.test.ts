// Dependency outages against the real PostgreSQL and Redis that .ci/run starts. A TCP proxy
// stands between this app and each server, so cutting it affects no other test file.
import t from 'tap'
import { buildApp, createTenant } from '../helper.ts'
import { proxyFor } from '../support/tcp-proxy.ts'
import { waitFor } from '../support/wait-for.ts'
import { appBehindPostgresProxy } from '../support/postgres-outage.ts'
import { isClusterUrl } from '../../services/store/redis-connection.ts'

const { DATABASE_URL, REDIS_URL } = process.env

// The proxy stands in front of one server (a cluster client would go round it to the nodes'
// own addresses): this runs in CI's standalone Redis pass.
if (REDIS_URL !== undefined && !isClusterUrl(REDIS_URL)) {
  t.test('Redis outage: fail closed with 503, recover without restart', async (t) => {
    const proxy = await proxyFor(REDIS_URL)
    t.teardown(async () => { await proxy.down() })
    const app = await buildApp(t, { REDIS_URL: proxy.urlFor(REDIS_URL) })
    const tenant = await createTenant(app, 'redis-out', { tier: 'starter' })
    t.equal((await tenant.execute('return 1')).statusCode, 200)

    await proxy.down()
    const refused = await tenant.execute('return 2')
    t.equal(refused.statusCode, 503)
    t.match(refused.json(), { error: 'Service unavailable', code: 'DEPENDENCY_UNAVAILABLE' })
    t.equal((await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })).statusCode, 503)
    const ready = await app.inject({ method: 'GET', url: '/ready' })
    t.equal(ready.statusCode, 503)
    t.same(ready.json().checks, { database: 'ok', redis: 'unreachable' })
    t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200)

    await proxy.up()
    t.ok(await waitFor(async () => (await app.inject({ method: 'GET', url: '/ready' })).statusCode === 200, { timeout: 15_000, interval: 200, message: '/ready is 200 again' }), 'ready again')
    t.equal((await tenant.execute('return 3')).statusCode, 200)
    const usage = (await app.inject({ method: 'GET', url: '/api/usage', headers: tenant.headers })).json()
    t.equal(usage.executions, 2, 'nothing ran unmetered while Redis was away')
  })
}

if (DATABASE_URL !== undefined) {
  t.test('PostgreSQL outage: 503 where it is needed, audit rows written when it returns', async (t) => {
    const { proxy, app, tenant } = await appBehindPostgresProxy(t, DATABASE_URL, 'pg-out')
    await app.audit.flush()

    await proxy.down()
    const ran = await tenant.execute('return 2')
    t.equal(ran.statusCode, 200, 'a run that needs no data still runs')
    const executionId = ran.json().executionId as string
    const audit = await app.inject({ method: 'GET', url: '/api/audit', headers: tenant.headers })
    t.equal(audit.statusCode, 503)
    t.equal(audit.json().code, 'DEPENDENCY_UNAVAILABLE')
    const query = await tenant.execute("try { await callTool('data:query', {}) } catch (e) { return e.code }")
    t.equal(query.json().value, 'TOOL_ERROR', 'a tool that needs the database fails, catchably')
    const ready = await app.inject({ method: 'GET', url: '/ready' })
    t.equal(ready.statusCode, 503)
    t.equal(ready.json().checks.database, 'unreachable')
    await app.audit.flush()
    t.ok(app.audit.pending >= 2, 'the audit rows wait in the retry queue')

    await proxy.up()
    t.ok(await waitFor(() => app.audit.pending === 0, { timeout: 20_000, interval: 200, message: 'the audit queue drains' }), 'the queue drains once PostgreSQL is back')
    const entries = (await app.inject({ method: 'GET', url: '/api/audit', headers: tenant.headers })).json().entries as Array<{ executionId: string }>
    t.ok(entries.some((e) => e.executionId === executionId), 'the row of the run made during the outage is there')
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
    t.match(metrics, /tenant_enclave_audit_write_failures_total [1-9]/)
    t.match(metrics, /tenant_enclave_audit_rows_lost_total 0/)
  })
}
