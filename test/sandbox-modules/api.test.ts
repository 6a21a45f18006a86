// Sandbox modules over HTTP: the list, the declarations, and scripts (JavaScript and TypeScript)
// importing them through /api/execute and /api/executions.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { adminHeaders, buildApp, createTenant, type TestTenant } from '../helper.ts'
import { waitFor } from '../support/wait-for.ts'

async function queued (app: FastifyInstance, tenant: TestTenant, code: string, language?: string): Promise<{ status: string, result?: { success: boolean, value?: unknown, error?: { code: string, message: string } } }> {
  const res = await app.inject({ method: 'POST', url: '/api/executions', headers: tenant.headers, payload: { code, ...(language !== undefined ? { language } : {}) } })
  t.equal(res.statusCode, 202, res.body)
  const { executionId } = res.json() as { executionId: string }
  let body: { status: string, result?: { success: boolean, value?: unknown, error?: { code: string, message: string } } } = { status: 'queued' }
  await waitFor(async () => {
    body = (await app.inject({ method: 'GET', url: `/api/executions/${executionId}`, headers: tenant.headers })).json()
    return body.status !== 'queued' && body.status !== 'running'
  })
  return body
}

t.test('modules over HTTP', async (t) => {
  const app = await buildApp(t)
  const tenant = await createTenant(app, 'modules')

  const list = await app.inject({ method: 'GET', url: '/api/modules', headers: tenant.headers })
  t.equal(list.statusCode, 200)
  const { modules } = list.json() as { modules: Array<{ name: string, version: string, description: string }> }
  t.same(modules.map((m) => m.name), ['date-fns', 'decimal.js', 'lodash-es', 'yaml', 'zod'])
  t.same(Object.keys(modules[0]).sort(), ['description', 'name', 'version'])
  t.equal((await app.inject({ method: 'GET', url: '/api/modules' })).statusCode, 401)

  const dts = await app.inject({ method: 'GET', url: '/api/modules.d.ts', headers: tenant.headers })
  t.equal(dts.statusCode, 200)
  t.match(dts.headers['content-type'], /^text\/plain/)
  for (const m of modules) t.ok(dts.body.includes(`declare module '${m.name}' {`), m.name)
  t.match(dts.body, /export declare const z|export \{[^}]*\bz\b|const z:|namespace z/)
  const again = await app.inject({ method: 'GET', url: '/api/modules.d.ts', headers: { ...tenant.headers, 'if-none-match': String(dts.headers.etag) } })
  t.equal(again.statusCode, 304)

  const js = await app.inject({ method: 'POST', url: '/api/execute', headers: tenant.headers, payload: { code: "import { z } from 'zod'\nreturn z.object({ n: z.number() }).parse({ n: 1 })" } })
  t.same(js.json(), { ...js.json(), success: true, value: { n: 1 } })

  const ts = [
    "import type { ZodType } from 'zod'",
    "import { z, type infer as Infer } from 'zod'",
    "import { format } from 'date-fns'",
    'const Row = z.object({ day: z.string() })',
    'type Row = Infer<typeof Row>',
    'const schema: ZodType = Row',
    "const row: Row = { day: format(new Date(Date.UTC(2024, 1, 3, 12)), 'yyyy-MM-dd') }",
    'return schema.parse(row)'
  ].join('\n')
  const viaQueue = await queued(app, tenant, ts, 'typescript')
  t.equal(viaQueue.status, 'succeeded', JSON.stringify(viaQueue))
  t.same(viaQueue.result?.value, { day: '2024-02-03' })

  const refused = await queued(app, tenant, "import _ from 'lodash'\nreturn 1", 'typescript')
  t.equal(refused.result?.error?.code, 'VALIDATION_ERROR')
  t.match(refused.result?.error?.message, /^Module 'lodash' cannot be imported: scripts may import only date-fns, decimal.js, lodash-es, yaml, zod/)

  const check = await app.inject({ method: 'POST', url: '/api/execute/check', headers: tenant.headers, payload: { code: "import { z } from 'zod'\nimport x from 'left-pad'\nreturn await import(x)" } })
  const report = check.json() as { ok: boolean, errors: Array<{ message: string, line: number }> }
  t.equal(report.ok, false)
  t.same(report.errors.map((e) => e.line), [2, 3], 'the check names every refused import')
})

t.test('a tenant narrowed to one module: the list, the declarations and runs follow; widening is refused', async (t) => {
  const app = await buildApp(t)
  const tenant = await createTenant(app, 'narrow')
  const put = async (sandboxModules: unknown): Promise<{ statusCode: number, body: string }> =>
    await app.inject({ method: 'PUT', url: `/admin/tenants/${tenant.tenantId}`, headers: adminHeaders(), payload: { tier: 'free', sandboxModules } })
  const stored = await put(['zod'])
  t.equal(stored.statusCode, 200, stored.body)
  t.same((JSON.parse(stored.body) as { sandboxModules: unknown }).sandboxModules, ['zod'])

  const list = (await app.inject({ method: 'GET', url: '/api/modules', headers: tenant.headers })).json() as { modules: Array<{ name: string }> }
  t.same(list.modules.map((m) => m.name), ['zod'])
  const dts = (await app.inject({ method: 'GET', url: '/api/modules.d.ts', headers: tenant.headers })).body
  t.ok(dts.includes("declare module 'zod' {"))
  t.notOk(dts.includes("declare module 'lodash-es' {"))

  const other = await app.inject({ method: 'POST', url: '/api/execute', headers: tenant.headers, payload: { code: "import { groupBy } from 'lodash-es'\nreturn 1" } })
  t.match(other.json(), { success: false, error: { code: 'VALIDATION_ERROR', message: "Module 'lodash-es' cannot be imported: scripts may import only zod (line 1, column 25)" } })
  const zod = await app.inject({ method: 'POST', url: '/api/execute', headers: tenant.headers, payload: { code: "const { z } = await import('zod')\nreturn z.boolean().parse(true)" } })
  t.match(zod.json(), { success: true, value: true })

  const widen = await put(['zod', 'left-pad'])
  t.equal(widen.statusCode, 400)
  t.match(JSON.parse(widen.body), { code: 'BAD_REQUEST', message: /^sandboxModules: left-pad is not a sandbox module; the build offers date-fns, decimal.js, lodash-es, yaml, zod$/ })
  t.equal((await put(null)).statusCode, 200, 'null gives back every module')
  const all = (await app.inject({ method: 'GET', url: '/api/modules', headers: tenant.headers })).json() as { modules: unknown[] }
  t.equal(all.modules.length, 5)
})
