import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { ApprovalModeSchema } from '../../services/tools/tool-settings.ts'
import { empty, errors, json, operation, RATE_LIMIT_HEADERS as rl } from '../../schemas/responses.ts'
import { ServiceError } from '../../services/errors/index.ts'
import { toolUpstreams } from '../../plugins/config.ts'
import { HTTP_METHODS } from '../../services/tools/tool-definition.ts'
import {
  PLATFORM_TOOL_NAME_PATTERN, checkPlatformTool, isDefinitionRejection, deletePlatformTool, getPlatformTool,
  listPlatformTools, normaliseOrigins, putPlatformTool, type PlatformToolInput
} from '../../services/tools/platform-tools.ts'
import { planImport } from '../../services/tools/openapi-import.ts'

const ToolName = Type.String({ pattern: PLATFORM_TOOL_NAME_PATTERN })
const JsonSchema = Type.Record(Type.String(), Type.Unknown(), { description: 'JSON Schema 2020-12' })
const ArgName = Type.String({ minLength: 1, maxLength: 128 })

const HttpSpec = Type.Object({
  method: Type.Enum([...HTTP_METHODS]),
  url: Type.String({ minLength: 1, maxLength: 2048, description: 'Absolute; {param} placeholders are filled from args, percent-encoded; its origin must be in TOOL_UPSTREAMS' }),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 60_000, description: 'Default 10000' })),
  maxResponseKB: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_536, description: 'Default 1024' })),
  queryArgs: Type.Optional(Type.Array(ArgName, { maxItems: 100, description: 'Args sent in the query string for POST/PUT/PATCH too' })),
  bodyArg: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'The arg that is the whole JSON body (POST/PUT/PATCH); default: the rest of the args' }))
}, { additionalProperties: false })

const ToolBody = Type.Object({
  description: Type.String({ maxLength: 2000 }),
  argsSchema: JsonSchema,
  resultSchema: Type.Optional(JsonSchema),
  http: HttpSpec,
  defaultEnabled: Type.Optional(Type.Boolean({ description: 'Whether a tenant with no setting may use it; default false' })),
  approval: Type.Optional(ApprovalModeSchema)
}, { additionalProperties: false })

const StoredHttpSpec = Type.Object({
  method: Type.Enum([...HTTP_METHODS]),
  url: Type.String(),
  timeoutMs: Type.Integer(),
  maxResponseKB: Type.Integer(),
  queryArgs: Type.Optional(Type.Array(Type.String())),
  bodyArg: Type.Optional(Type.String())
})

const PlatformToolSchema = Type.Object({
  name: Type.String(),
  description: Type.String(),
  argsSchema: JsonSchema,
  resultSchema: Type.Union([JsonSchema, Type.Null()]),
  http: StoredHttpSpec,
  defaultEnabled: Type.Boolean(),
  approval: ApprovalModeSchema,
  version: Type.Integer({ description: 'Grows with every change' }),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' })
}, { $id: 'PlatformTool' })

const ImportBody = Type.Object({
  openapi: Type.Record(Type.String(), Type.Unknown(), { description: 'An OpenAPI 3.0 or 3.1 document (JSON); local $refs are resolved' }),
  baseUrl: Type.String({ minLength: 1, maxLength: 2048, description: 'Prepended to every path; its origin must be in TOOL_UPSTREAMS' }),
  prefix: Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$', description: 'Tools are named <prefix>:<operationId>' }),
  operations: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 1000, description: 'Only these operationIds' })),
  defaultEnabled: Type.Optional(Type.Boolean())
}, { additionalProperties: false })

const ImportResult = Type.Object({
  imported: Type.Array(Type.String()),
  skipped: Type.Array(Type.Object({ operation: Type.String(), reason: Type.String() }))
}, { $id: 'ImportResult' })

const Params = Type.Object({ name: ToolName })

/** /admin/tools: the platform's HTTP tools (docs/api.md "Platform tools"). */
const adminPlatformToolRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const upstreams = normaliseOrigins(toolUpstreams(fastify.config))
  const check = (name: string, input: PlatformToolInput) => checkPlatformTool(name, input, { builtinNames: fastify.tools.builtinNames(), upstreams })

  fastify.get('/tools', {
    schema: operation('admin', 'listPlatformTools', 'List platform tools', 'Every platform tool (HTTP tools the platform declared).', {
      response: { 200: json('The platform tools', Type.Object({ tools: Type.Array(PlatformToolSchema) }, { $id: 'PlatformToolList' }), rl), ...errors([401, 403, 429, 503]) }
    })
  }, async () => ({ tools: await listPlatformTools(fastify.db) }))

  fastify.post('/tools/import', {
    schema: operation('admin', 'importPlatformTools', 'Import platform tools from an OpenAPI document', 'Creates or replaces a tool for each operation of an OpenAPI document that has an operationId; the others are listed in `skipped` with the reason.', {
      body: ImportBody,
      response: { 200: json('What was imported and what was skipped, and why', ImportResult, rl), ...errors([400, 401, 403, 429, 503]) }
    })
  }, async (request) => {
    const plan = await planImport(request.body)
    const checked = []
    const skipped = [...plan.skipped]
    for (const tool of plan.tools) {
      try {
        checked.push(check(tool.name, tool.input))
      } catch (err) {
        // The base URL is the whole import's: refuse it all rather than skip every operation.
        if (!isDefinitionRejection(err)) throw err
        skipped.push({ operation: tool.operation, reason: err.message })
      }
    }
    for (const tool of checked) await putPlatformTool(fastify.db, tool)
    if (checked.length > 0) await fastify.tools.catalogueChanged()
    request.log.info({ imported: checked.length, skipped: skipped.length }, 'platform tools imported')
    return { imported: checked.map((tool) => tool.name), skipped }
  })

  fastify.put('/tools/:name', {
    schema: operation('admin', 'putPlatformTool', 'Create or replace a platform tool', 'Creates or replaces a platform tool; every instance picks the change up at once.', {
      params: Params,
      body: ToolBody,
      response: { 200: json('The tool as stored', PlatformToolSchema, rl), ...errors([400, 401, 403, 429, 503]) }
    })
  }, async (request) => {
    const stored = await putPlatformTool(fastify.db, check(request.params.name, request.body))
    await fastify.tools.catalogueChanged()
    request.log.info({ tool: stored.name, version: stored.version }, 'platform tool stored')
    return stored
  })

  fastify.get('/tools/:name', {
    schema: operation('admin', 'getPlatformTool', 'Get a platform tool', 'One platform tool.', {
      params: Params,
      response: { 200: json('The tool', PlatformToolSchema, rl), ...errors([400, 401, 403, 404, 429, 503], { 404: 'No such platform tool (NOT_FOUND)' }) }
    })
  }, async (request) => {
    const tool = await getPlatformTool(fastify.db, request.params.name)
    if (tool === undefined) throw new ServiceError('NOT_FOUND', { what: `No platform tool ${request.params.name}` })
    return tool
  })

  fastify.delete('/tools/:name', {
    schema: operation('admin', 'deletePlatformTool', 'Delete a platform tool', 'Deletes a platform tool: calls to it fail with TOOL_NOT_FOUND on every instance.', {
      params: Params,
      response: { 204: empty('Deleted', rl), ...errors([400, 401, 403, 404, 429, 503], { 404: 'No such platform tool (NOT_FOUND)' }) }
    })
  }, async (request, reply) => {
    if (!(await deletePlatformTool(fastify.db, request.params.name))) throw new ServiceError('NOT_FOUND', { what: `No platform tool ${request.params.name}` })
    await fastify.tools.catalogueChanged()
    request.log.info({ tool: request.params.name }, 'platform tool deleted')
    return await reply.code(204).send(null)
  })
}

export default adminPlatformToolRoutes
