import { execFile } from 'node:child_process'
import { mkdtemp, writeFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import openapiTS, { astToString } from 'openapi-typescript'
import { buildApp } from '../helper.ts'
import { ERROR_CODES } from '../../services/enclave/index.ts'

const run = promisify(execFile)

t.test('the OpenAPI document', async (t) => {
  const app = await buildApp(t)
  const res = await app.inject({ method: 'GET', url: '/docs/json' })
  t.equal(res.statusCode, 200)
  const doc = res.json()
  t.equal(doc.openapi, '3.0.3')
  t.same(doc.components.securitySchemes.bearerAuth, { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
  const routes: Array<[string, string]> = [
    ['/api/execute', 'post'], ['/api/usage', 'get'], ['/api/tools', 'get'], ['/api/audit', 'get'],
    ['/admin/tenants/{tenantId}', 'put'], ['/admin/tenants/{tenantId}', 'get'],
    ['/admin/tenants/{tenantId}/tools/{tool}', 'put'], ['/admin/tenants/{tenantId}/tools/{tool}', 'delete'],
    ['/health', 'get'], ['/ready', 'get'], ['/metrics', 'get']
  ]
  for (const [path, method] of routes) {
    t.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path} is documented`)
  }
  const execute = doc.paths['/api/execute'].post
  t.same(execute.security, [{ bearerAuth: [] }])
  t.same(Object.keys(execute.responses).sort(), ['200', '400', '401', '413', '429', '503'])
  t.ok(execute.requestBody.content['application/json'].schema.properties.code)
  t.equal(doc.paths['/health'].get.security, undefined, '/health needs no token')
  // A client learns the error codes from this document: exactly the ones the enclave can give.
  const documented = execute.responses['200'].content['application/json'].schema.properties.error.properties.code.enum as string[]
  t.same([...documented].sort(), [...ERROR_CODES].sort(), 'the documented error codes are the enclave\'s')

  const ui = await app.inject({ method: 'GET', url: '/docs/' })
  t.equal(ui.statusCode, 200)
  t.match(ui.headers['content-type'], /text\/html/)

  t.test('a generated TypeScript client type-checks a call, and rejects a wrong one', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'openapi-client-'))
    t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
    await writeFile(join(dir, 'schema.ts'), astToString(await openapiTS(doc)))
    const example = (body: string): string => `
      import type { paths } from './schema.ts'
      type ExecuteBody = paths['/api/execute']['post']['requestBody']['content']['application/json']
      type ExecuteResult = paths['/api/execute']['post']['responses']['200']['content']['application/json']
      type Usage = paths['/api/usage']['get']['responses']['200']['content']['application/json']
      export async function call (fetchJson: (path: string, body: unknown) => Promise<unknown>): Promise<number> {
        const body: ExecuteBody = ${body}
        const result = await fetchJson('/api/execute', body) as ExecuteResult
        const usage = await fetchJson('/api/usage', undefined) as Usage
        const code: string | undefined = result.error?.code
        return result.stats.toolCallCount + usage.quotas.maxExecutionsPerDay + (code === undefined ? 0 : 1)
      }
    `
    const tsc = join(process.cwd(), 'node_modules', 'typescript', 'bin', 'tsc')
    const flags = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck']
    await writeFile(join(dir, 'good.ts'), example("{ code: 'return 1', timeoutMs: 1000 }"))
    await t.resolves(run(process.execPath, [tsc, ...flags, join(dir, 'good.ts')]), 'a correct call type-checks')
    await writeFile(join(dir, 'bad.ts'), example('{ code: 42 }'))
    await t.rejects(run(process.execPath, [tsc, ...flags, join(dir, 'bad.ts')]), 'a wrong body does not')
  })
})
