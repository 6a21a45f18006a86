// An example of the platform's own API, called by tenant-enclave's platform tools. It trusts
// nothing but the signed tenant assertion: verified against the service's JWKS (jose's remote
// JWKS, cached and refetched on an unknown kid), for this API's own origin as audience.
//   ENCLAVE_URL=http://127.0.0.1:3000 PORT=4000 npm run example:platform-api
import { randomUUID } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose'
import { openApiDocument } from './openapi.ts'

export interface PlatformApiOptions {
  /** Where tenant-enclave runs: its /.well-known/jwks.json has the signing key. */
  enclaveUrl: string
  /** This API's origin, as registered in TOOL_UPSTREAMS: the assertion's audience. */
  origin: string
  issuer?: string
  logger?: boolean
}

interface Caller { tenantId: string, userId: string, tool: string, executionId: string }
interface Contact { id: string, name: string, email?: string | null, createdBy: string }

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller
  }
}

export function buildPlatformApi (options: PlatformApiOptions): FastifyInstance {
  const app = Fastify({ logger: options.logger ?? false })
  const jwks = createRemoteJWKSet(new URL('/.well-known/jwks.json', options.enclaveUrl))
  // Per-tenant data: a tenant only ever reaches its own map, chosen by the verified assertion.
  const contacts = new Map<string, Map<string, Contact>>()
  const replies = new Map<string, Contact>()
  const tenantContacts = (tenantId: string): Map<string, Contact> => {
    let map = contacts.get(tenantId)
    if (map === undefined) contacts.set(tenantId, map = new Map())
    return map
  }

  app.decorateRequest('caller', null as unknown as Caller)
  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/crm/')) return
    const match = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')
    if (match === null) return await reply.code(401).send({ error: 'missing assertion' })
    let payload: JWTPayload
    try {
      ({ payload } = await jwtVerify(match[1] as string, jwks, { issuer: options.issuer ?? 'tenant-enclave', audience: options.origin, algorithms: ['ES256'], maxTokenAge: '60s' }))
    } catch (err) {
      request.log.warn({ err: (err as Error).message }, 'assertion refused')
      return await reply.code(401).send({ error: 'invalid assertion' })
    }
    request.caller = { tenantId: String(payload.tenantId), userId: String(payload.sub), tool: String(payload.tool), executionId: String(payload.executionId) }
    request.log.info({ caller: request.caller }, `tenant ${request.caller.tenantId} called ${request.caller.tool}`)
  })

  app.get('/health', async () => ({ ok: true }))
  app.get('/openapi.json', async () => openApiDocument(options.origin))
  app.get('/crm/whoami', async (request) => request.caller)
  app.get('/crm/contacts', async (request) => {
    const q = String((request.query as { q?: string }).q ?? '').toLowerCase()
    return [...tenantContacts(request.caller.tenantId).values()].filter((c) => c.name.toLowerCase().includes(q))
  })
  app.get('/crm/contacts/:id', async (request, reply) => {
    const contact = tenantContacts(request.caller.tenantId).get((request.params as { id: string }).id)
    return contact ?? await reply.code(404).send({ error: 'no such contact' })
  })
  app.post('/crm/contacts', async (request, reply) => {
    const { tenantId, userId } = request.caller
    // A retried call (same execution and call index) gets the first answer, not a second contact.
    const key = `${tenantId}/${String(request.headers['idempotency-key'] ?? randomUUID())}`
    let contact = replies.get(key)
    if (contact === undefined) {
      const body = request.body as { name?: unknown, email?: unknown }
      if (typeof body?.name !== 'string' || body.name === '') return await reply.code(400).send({ error: 'name is required' })
      contact = { id: randomUUID(), name: body.name, email: typeof body.email === 'string' ? body.email : null, createdBy: userId }
      tenantContacts(tenantId).set(contact.id, contact)
      replies.set(key, contact)
    }
    return await reply.code(201).send(contact)
  })
  return app
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const port = Number(process.env.PORT ?? 4000)
  const host = process.env.HOST ?? '127.0.0.1'
  const app = buildPlatformApi({ enclaveUrl: process.env.ENCLAVE_URL ?? 'http://127.0.0.1:3000', origin: process.env.ORIGIN ?? `http://${host}:${port}`, logger: true })
  await app.listen({ port, host })
}
