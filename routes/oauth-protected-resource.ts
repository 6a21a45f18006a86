import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { errors, json, operation } from '../schemas/responses.ts'
import { listSetting, type Config } from '../plugins/config.ts'

const ProtectedResource = Type.Object({
  resource: Type.String({ description: 'The MCP endpoint\'s URL' }),
  authorization_servers: Type.Array(Type.String(), { description: 'MCP_AUTHORIZATION_SERVERS' }),
  bearer_methods_supported: Type.Array(Type.String())
})

/** The service's public origin: MCP_PUBLIC_URL, or what the request says it reached. */
export function publicBase (config: Pick<Config, 'MCP_PUBLIC_URL'>, request: FastifyRequest): string {
  return config.MCP_PUBLIC_URL ?? `${request.protocol}://${request.host}`
}

/**
 * OAuth 2.0 Protected Resource Metadata (RFC 9728) for /mcp: an MCP client that got a 401 reads
 * it (the 401's resource_metadata) to find where tokens come from. No auth. Served at the root
 * and at the path-suffixed form (`/mcp`) that clients try first.
 */
const oauthProtectedResourceRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const servers = listSetting(fastify.config.MCP_AUTHORIZATION_SERVERS)
  for (const [url, operationId] of [['/.well-known/oauth-protected-resource', 'getProtectedResourceMetadata'], ['/.well-known/oauth-protected-resource/mcp', 'getMcpProtectedResourceMetadata']]) {
    fastify.get(url as string, {
      schema: operation('mcp', operationId as string, 'Protected resource metadata of /mcp', 'RFC 9728: the authorization servers that issue /mcp\'s bearer tokens (MCP_AUTHORIZATION_SERVERS). Also served at the path-suffixed form MCP clients try first.', {
        security: [],
        response: { 200: json('The metadata document', ProtectedResource), ...errors([429]) }
      })
    }, async (request, reply) => {
      void reply.header('cache-control', 'public, max-age=300').header('access-control-allow-origin', '*')
      return { resource: `${publicBase(fastify.config, request)}/mcp`, authorization_servers: servers, bearer_methods_supported: ['header'] }
    })
  }
}

export default oauthProtectedResourceRoutes
