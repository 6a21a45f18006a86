import { mkdtemp, writeFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import ts from 'typescript'
import openapiTS, { astToString } from 'openapi-typescript'
import { adminHeaders, buildApp } from '../helper.ts'
import { ERROR_CODES } from '../../services/enclave/index.ts'
import { HTTP_ERROR_CODES } from '../../services/errors/index.ts'

interface Operation {
  operationId?: string
  tags?: string[]
  summary?: string
  description?: string
  security?: unknown[]
  responses: Record<string, { description: string, headers?: Record<string, unknown>, content?: Record<string, { schema: { $ref?: string } }> }>
  requestBody?: { content: Record<string, { schema: { $ref?: string } }> }
}
const METHODS = ['get', 'put', 'post', 'delete', 'patch']

t.test('the OpenAPI document', async (t) => {
  const origin = 'http://127.0.0.1:9'
  const app = await buildApp(t, { TOOL_UPSTREAMS: origin })
  const res = await app.inject({ method: 'GET', url: '/docs/json' })
  t.equal(res.statusCode, 200)
  const doc = res.json()
  t.equal(doc.openapi, '3.0.3')
  t.same(doc.servers, [{ url: '/', description: 'The service that serves this document' }])
  t.same(doc.components.securitySchemes.bearerAuth, { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
  const operations: Array<[string, string, Operation]> = []
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, Operation>>)) {
    for (const method of METHODS) if (item[method] !== undefined) operations.push([path, method, item[method]])
  }
  const schemas = doc.components.schemas as Record<string, { properties?: Record<string, { enum?: string[], $ref?: string }> }>

  t.test('every operation is named, tagged, summarised and described, every response too', async (t) => {
    const ids = operations.map(([, , op]) => op.operationId)
    t.equal(new Set(ids).size, ids.length, 'operationIds are unique')
    for (const [path, method, op] of operations) {
      const where = `${method.toUpperCase()} ${path}`
      t.match(op.operationId, /^[a-z][A-Za-z]+$/, `${where} has an operationId`)
      t.ok((op.tags ?? []).length > 0 && op.summary !== undefined && op.description !== undefined, `${where} has a tag, a summary and a description`)
      for (const [status, response] of Object.entries(op.responses)) {
        t.not(response.description, 'Default Response', `${where} ${status} says what it means`)
      }
      const needsToken = path.startsWith('/api/') || path.startsWith('/admin/') || path === '/mcp'
      if (needsToken) t.same(op.security, [{ bearerAuth: [] }], `${where} needs the token`)
      else if (path !== '/metrics') t.same(op.security, [], `${where} is public, and says so`)
      // Every route but the probes and /metrics goes through the per-tenant rate limit.
      if (!['/health', '/ready', '/metrics'].includes(path)) {
        t.ok(op.responses['429']?.headers?.['retry-after'], `${where} declares its 429 with Retry-After`)
      }
    }
    const byRoute = Object.fromEntries(operations.map(([path, method, op]) => [`${method.toUpperCase()} ${path}`, op.operationId]))
    t.match(byRoute, {
      'POST /api/execute': 'runScript',
      'POST /api/execute/check': 'checkScript',
      'POST /api/executions': 'submitExecution',
      'GET /api/executions': 'listExecutions',
      'GET /api/executions/{id}': 'getExecution',
      'DELETE /api/executions/{id}': 'cancelExecution',
      'GET /api/executions/{id}/events': 'streamExecutionEvents',
      'GET /api/usage': 'getUsage',
      'GET /api/usage/history': 'getUsageHistory',
      'GET /api/audit': 'listAudit',
      'GET /api/tools.d.ts': 'getToolDeclarations'
    })
  })

  t.test('shared shapes are components, referenced from the operations', async (t) => {
    for (const name of ['ExecutionResult', 'ExecutionError', 'ErrorBody', 'Refusal', 'Execution', 'ExecutionEvent', 'LogEvent', 'FinalEvent', 'Tool', 'Usage', 'AuditEntry', 'SessionOpened', 'EncryptedFrame']) {
      t.ok(schemas[name], `${name} is a component`)
    }
    const execute = doc.paths['/api/execute'].post as Operation
    t.same(execute.requestBody?.content['application/json'].schema, { $ref: '#/components/schemas/ExecutionRequest' })
    t.same(Object.keys(execute.responses).sort(), ['200', '400', '401', '413', '429', '503'])
    const ok = execute.responses['200'].content ?? {}
    t.same(ok['application/json']?.schema, { $ref: '#/components/schemas/ExecutionResult' })
    t.same(ok['text/event-stream']?.schema, { $ref: '#/components/schemas/ExecutionEvent' }, 'a stream is documented as its events')
    t.same(ok['application/x-ndjson']?.schema, { $ref: '#/components/schemas/ExecutionEvent' })
    t.same(Object.keys(execute.responses['401'].content ?? {}), ['application/json'], 'a 401 is JSON, whatever Accept asked for')
    t.same(doc.paths['/api/executions'].post.responses['202'].headers.location.schema, { type: 'string' })
    t.ok(doc.paths['/api/tools.d.ts'].get.responses['304'], 'tools.d.ts documents its 304')
    t.ok(doc.paths['/api/tools.d.ts'].get.responses['200'].headers.etag)
    // A client learns the error codes from this document: the registry's, nothing else.
    t.same([...(schemas.ExecutionErrorCode as { enum: string[] }).enum].sort(), [...ERROR_CODES].sort(), 'ExecutionError codes are the enclave\'s')
    t.same([...(schemas.ErrorBody?.properties?.code?.enum ?? [])].sort(), [...HTTP_ERROR_CODES].sort(), 'ErrorBody codes are the registry\'s HTTP codes')
  })

  t.test('the service imports its own API as tools', async (t) => {
    const imported = await app.inject({ method: 'POST', url: '/admin/tools/import', headers: adminHeaders(), payload: { openapi: doc, baseUrl: origin, prefix: 'self' } })
    t.equal(imported.statusCode, 200)
    const { imported: names, skipped } = imported.json() as { imported: string[], skipped: Array<{ operation: string, reason: string }> }
    t.same(skipped.filter((s) => s.reason === 'no operationId'), [], 'no operation is skipped for want of an operationId')
    t.same(names.length + skipped.length, operations.length, 'every operation is imported, or skipped with its reason')
    t.ok(names.includes('self:runScript') && names.includes('self:listExecutions'))
    // Platform tools are global: on a shared database they would show in every later test's catalogue.
    for (const name of names) {
      const deleted = await app.inject({ method: 'DELETE', url: `/admin/tools/${name}`, headers: adminHeaders() })
      t.equal(deleted.statusCode, 204, `${name} deleted again`)
    }
    t.comment(`skipped: ${JSON.stringify(skipped)}`)
  })

  t.test('building the document leaves the route schemas as they were: a second app builds, with the same document', async (t) => {
    const second = await buildApp(t, { TOOL_UPSTREAMS: origin })
    t.same((await second.inject({ method: 'GET', url: '/docs/json' })).json(), doc)
  })

  const ui = await app.inject({ method: 'GET', url: '/docs/' })
  t.equal(ui.statusCode, 200)
  t.match(ui.headers['content-type'], /text\/html/)

  t.test('a generated TypeScript client type-checks a call, and rejects a wrong one', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'openapi-client-'))
    t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
    await writeFile(join(dir, 'schema.ts'), astToString(await openapiTS(doc)))
    const example = (body: string): string => `
      import type { components, operations } from './schema.ts'
      type ExecuteBody = components['schemas']['ExecutionRequest']
      type ExecuteResult = operations['runScript']['responses']['200']['content']['application/json']
      type Usage = components['schemas']['Usage']
      export async function call (fetchJson: (path: string, body: unknown) => Promise<unknown>): Promise<number> {
        const body: ExecuteBody = ${body}
        const result = await fetchJson('/api/execute', body) as ExecuteResult
        const usage = await fetchJson('/api/usage', undefined) as Usage
        const code: string | undefined = result.error?.code
        return result.stats.toolCallCount + usage.quotas.maxExecutionsPerDay + (code === undefined ? 0 : 1)
      }
    `
    await writeFile(join(dir, 'good.ts'), example("{ code: 'return 1', timeoutMs: 1000 }"))
    await writeFile(join(dir, 'bad.ts'), example('{ code: 42 }'))
    // tsc's own compiler in this process (openapi-typescript has loaded it), with the options of
    // `tsc --noEmit --strict --module nodenext --moduleResolution nodenext --target es2022
    // --skipLibCheck`: one program for both files, not two tsc processes of seconds each.
    const program = ts.createProgram([join(dir, 'good.ts'), join(dir, 'bad.ts')], {
      noEmit: true, strict: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, skipLibCheck: true
    })
    const errors = (file: string): string[] => ts.getPreEmitDiagnostics(program, program.getSourceFile(join(dir, file)))
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
    t.same(errors('good.ts'), [], 'a correct call type-checks')
    t.match(errors('bad.ts'), [/Type 'number' is not assignable to type 'string'/], 'a wrong body does not')
  })
})
