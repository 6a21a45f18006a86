import type { FastifyInstance } from 'fastify'
import { buildApp, createTenant, type TestTenant } from '../helper.ts'
import { proxyFor, type TcpProxy } from './tcp-proxy.ts'
import { waitFor } from './wait-for.ts'

type Test = Parameters<typeof buildApp>[0]

/**
 * An app whose PostgreSQL sits behind a proxy the test can take down, with one starter tenant
 * whose cache entry is warm, so runs that need no data find their tenant while PostgreSQL is away.
 */
export async function appBehindPostgresProxy (t: Test, databaseUrl: string, tenantName: string): Promise<{ proxy: TcpProxy, app: FastifyInstance, tenant: TestTenant }> {
  const proxy = await proxyFor(databaseUrl)
  t.teardown(async () => { await proxy.down() })
  const app = await buildApp(t, { DATABASE_URL: proxy.urlFor(databaseUrl), TENANT_CACHE_TTL_MS: '600000' })
  // The PUT in createTenant announces a tenant change that comes back through pub/sub and drops
  // the tenant cache: let it arrive before warming the cache. The app's subscriber was there
  // first, so by the time ours hears it, the app has dropped its entry.
  const notices: string[] = []
  await app.store.subscribe('tenant-enclave:tenant-changed', (tenantId) => { notices.push(tenantId) })
  const tenant = await createTenant(app, tenantName, { tier: 'starter' })
  await waitFor(() => notices.includes(tenant.tenantId), { message: 'the tenant-changed notice came back' })
  const warm = await tenant.execute('return 1')
  if (warm.statusCode !== 200) throw new Error(`warming the tenant cache answered ${warm.statusCode}: ${warm.body}`)
  return { proxy, app, tenant }
}
