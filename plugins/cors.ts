import fp from 'fastify-plugin'
import fastifyCors from '@fastify/cors'
import { corsOrigins } from './config.ts'

/**
 * Cross-origin access only for the origins CORS_ORIGINS lists; with none listed (the default) the
 * plugin is not registered, so no response carries a CORS header and browsers keep the
 * same-origin rule. Tokens travel in the Authorization header, never in cookies: no credentials.
 */
export default fp(async (fastify) => {
  const origins = corsOrigins(fastify.config)
  if (origins.length === 0) return
  await fastify.register(fastifyCors, {
    origin: origins,
    methods: ['GET', 'POST', 'PUT', 'DELETE'],
    // The mcp-* headers: a browser-based MCP client on /mcp (its origin also in MCP_ALLOWED_ORIGINS).
    allowedHeaders: ['authorization', 'content-type', 'mcp-protocol-version', 'mcp-session-id', 'last-event-id'],
    exposedHeaders: ['retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'mcp-session-id', 'www-authenticate'],
    credentials: false,
    maxAge: 600
  })
}, { name: 'cors', dependencies: ['config'] })
