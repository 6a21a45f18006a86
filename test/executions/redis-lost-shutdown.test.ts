// Shutdown after Redis was lost under a running worker (real Redis behind a proxy that is cut):
// app.close() must end, and leave nothing behind that keeps the process alive. BullMQ's own
// graceful close waited for Redis forever and kept its lock-renewal timer going, so this file
// never exited (tap fails a test file that does not end within its timeout).
import t, { type Test } from 'tap'
import { buildApp, createTenant } from '../helper.ts'
import { proxyFor } from '../support/tcp-proxy.ts'
import { waitFor } from '../support/wait-for.ts'
import { isClusterUrl } from '../../services/store/redis-connection.ts'

const { REDIS_URL } = process.env

// The proxy stands in front of one server (a cluster client would go round it to the nodes'
// own addresses): this runs in CI's standalone Redis pass.
if (REDIS_URL !== undefined && !isClusterUrl(REDIS_URL)) {
  const closesAfterRedisIsLost = async (t: Test, code: string, until: string): Promise<void> => {
    const proxy = await proxyFor(REDIS_URL)
    t.teardown(async () => { await proxy.down() })
    // Closed by the test itself, not by a teardown: closing is what is tested.
    const app = await buildApp({ teardown: () => {} }, { REDIS_URL: proxy.urlFor(REDIS_URL), ENCLAVE_RUNNERS: '1' })
    const tenant = await createTenant(app, 'close-redis-lost', { tier: 'starter' })
    const submitted = await app.inject({ method: 'POST', url: '/api/executions', headers: tenant.headers, payload: { code, timeoutMs: 20_000 } })
    t.equal(submitted.statusCode, 202)
    const { executionId } = submitted.json() as { executionId: string }
    await waitFor(async () => (await app.inject({ method: 'GET', url: `/api/executions/${executionId}`, headers: tenant.headers })).json().status === until, { message: until })
    await proxy.down()
    await app.close()
    t.pass('app.close() returned')
  }

  t.test('app.close() ends when Redis was lost under an idle worker', async (t) => { await closesAfterRedisIsLost(t, 'return 1', 'succeeded') })
  t.test('app.close() ends when Redis was lost while a queued run was running', async (t) => { await closesAfterRedisIsLost(t, 'while (true) {}', 'running') })
}
