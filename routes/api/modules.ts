import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { empty, errors, json, operation, RATE_LIMIT_HEADERS as rl } from '../../schemas/responses.ts'
import { declarationsOf, modulesFor } from '../../services/sandbox-modules/catalog.ts'

const SandboxModule = Type.Object({
  name: Type.String({ description: 'What a script imports: `import { … } from \'name\'`' }),
  version: Type.String({ description: 'The bundled version (locked at build time)' }),
  description: Type.String({ description: 'The package\'s own description' })
}, { $id: 'SandboxModule', description: 'An npm library scripts may import inside the isolate' })

const sandboxModuleRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const catalog = fastify.sandboxModules
  // A tenant's settings may narrow the build's list (PUT /admin/tenants/:id).
  const allowed = async (tenantId: string): Promise<string[]> => modulesFor(catalog, (await fastify.tenants.get(tenantId)).sandboxModules)

  fastify.get('/modules', {
    schema: operation('tools', 'listModules', 'List the modules scripts may import', 'The npm libraries this tenant\'s scripts may import (`import { z } from \'zod\'` at the top, or `await import(\'zod\')`), bundled and checked when the service was built, narrowed by the tenant\'s settings. Any other specifier is refused with VALIDATION_ERROR.', {
      response: { 200: json('The modules', Type.Object({ modules: Type.Array(SandboxModule) }, { $id: 'SandboxModuleList' }), rl), ...errors([401, 429, 503]) }
    })
  }, async (request) => {
    const names = await allowed(request.tenant.tenantId)
    return { modules: catalog.modules.filter((m) => names.includes(m.name)) }
  })

  fastify.get('/modules.d.ts', {
    schema: operation('tools', 'getModuleDeclarations', 'TypeScript declarations of the modules scripts may import', 'One `declare module \'name\' { … }` block per module, bundled from each package\'s own type declarations, for an LLM\'s prompt or a type check. Send the ETag back as If-None-Match to get a 304 while nothing changed.', {
      headers: Type.Object({ 'if-none-match': Type.Optional(Type.String({ description: 'The ETag of the declarations the caller holds' })) }),
      response: {
        200: {
          description: 'The declarations',
          content: { 'text/plain': { schema: Type.String({ description: 'A TypeScript declaration file' }) } },
          headers: { etag: Type.String({ description: 'Names these declarations; send it as If-None-Match' }), ...rl }
        },
        304: empty('If-None-Match named the current ETag: the caller\'s copy is current', { etag: Type.String({ description: 'The current ETag' }) }),
        ...errors([401, 429, 503])
      }
    })
  }, async (request, reply) => {
    const { text, etag } = declarationsOf(catalog, await allowed(request.tenant.tenantId))
    void reply.header('etag', etag).header('cache-control', 'private, no-cache').header('vary', 'authorization')
    const held = request.headers['if-none-match']
    if (held !== undefined && held.split(',').some((tag) => [etag, `W/${etag}`, '*'].includes(tag.trim()))) return await reply.code(304).send(null)
    return await reply.type('text/plain; charset=utf-8').send(text)
  })
}

export default sandboxModuleRoutes
