import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { declarationFileSchema, sendDeclarationFile } from '../../schemas/declaration-file.ts'
import { errors, json, operation, RATE_LIMIT_HEADERS as rl } from '../../schemas/responses.ts'
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
      ...declarationFileSchema
    })
  }, async (request, reply) => {
    return await sendDeclarationFile(request, reply, declarationsOf(catalog, await allowed(request.tenant.tenantId)))
  })
}

export default sandboxModuleRoutes
