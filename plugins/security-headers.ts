import fp from 'fastify-plugin'
import { IncomingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import helmet from 'helmet'

/**
 * Security headers on every response (helmet: nosniff, frame and referrer policy, HSTS, ...). The
 * API answers JSON only, so its CSP allows nothing to load or frame it; Swagger UI's pages under
 * /docs set their own, looser CSP (plugins/swagger.ts), and the console its own (plugins/console.ts).
 */
export default fp(async (fastify) => {
  const setSecurityHeaders = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'none'"]
      }
    }
  })
  // These options make the same headers for every request, so helmet runs once, here, on a
  // response of our own, and each request gets a copy on its reply. Setting them on the raw
  // response per request cost a validated setHeader each (twelve), and it sent every header of
  // the response down Node's slow writeHead path; on the reply they go out in one pass.
  const probe = new ServerResponse(new IncomingMessage(new Socket()))
  let ran = false
  setSecurityHeaders(probe.req, probe, (err?: unknown) => {
    if (err !== undefined) throw err
    ran = true
  })
  if (!ran) throw new Error('helmet did not set its headers at once: they would depend on the request')
  const headers = Object.fromEntries(Object.entries(probe.getHeaders()).map(([name, value]) => [name, String(value)]))
  fastify.addHook('onRequest', (_request, reply, done) => {
    reply.headers(headers)
    done()
  })
}, { name: 'security-headers', dependencies: ['config'] })
