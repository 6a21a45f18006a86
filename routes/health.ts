import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { json, operation } from '../schemas/responses.ts'

const Check = Type.Enum(['ok', 'in-process', 'unreachable'])
// What confines the runners on this machine (detected at start; see docs/architecture.md "The sandbox under a
// hostile tenant"), so an operator sees at once when a protection is missing.
const Sandbox = Type.Object({
  permissionModel: Type.Boolean(),
  environment: Type.Literal('allow-list'),
  user: Type.Enum(['nobody', 'service user']),
  network: Type.Enum(['none', 'host']),
  filesystem: Type.Enum(['read-only', 'host'])
})
const Readiness = Type.Object({
  status: Type.Enum(['ready', 'not ready']),
  checks: Type.Object({ database: Check, redis: Check }),
  sandbox: Sandbox
}, { $id: 'Readiness' })

const healthRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/health', {
    config: { rateLimit: false },
    schema: operation('health', 'getHealth', 'Liveness', 'The process is up. Public and not rate-limited.', {
      response: { 200: json('The process is up', Type.Object({ status: Type.Literal('ok') }, { $id: 'Health' })) }
    })
  }, async () => ({ status: 'ok' as const }))

  fastify.get('/ready', {
    config: { rateLimit: false },
    schema: operation('health', 'getReadiness', 'Readiness', 'Whether PostgreSQL and Redis answer, and which protections confine the sandbox runners on this machine. Public and not rate-limited.', {
      response: { 200: json('Ready to serve', Readiness), 503: json('Not ready: a dependency does not answer', Readiness) }
    })
  }, async (request, reply) => {
    const [database, redis] = await Promise.all([
      fastify.pingDatabase().then(() => 'ok' as const, (err: unknown) => {
        request.log.warn({ err }, 'readiness: PostgreSQL unreachable')
        return 'unreachable' as const
      }),
      fastify.store.kind === 'memory'
        ? 'in-process' as const
        : fastify.store.ping().then(() => 'ok' as const, (err: unknown) => {
          request.log.warn({ err }, 'readiness: Redis unreachable')
          return 'unreachable' as const
        })
    ])
    const ready = database !== 'unreachable' && redis !== 'unreachable'
    return await reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks: { database, redis }, sandbox: fastify.enclave.protections })
  })
}

export default healthRoutes
