import fp from 'fastify-plugin'
import helmet from 'helmet'

/**
 * Security headers on every response (helmet: nosniff, frame and referrer policy, HSTS, ...). The
 * API answers JSON only, so its CSP allows nothing to load or frame it; Swagger UI's pages under
 * /docs set their own, looser CSP (plugins/swagger.ts), and the console its own (plugins/console.ts).
 */
export default fp(async (fastify) => {
  // Built once: @fastify/helmet builds helmet's middleware again for every request (its CSP parsed
  // each time), which was about 0.07 ms of a trivial run's request on a 2-core machine.
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
  // helmet 8 throws its errors (none for fixed options) rather than passing them on.
  fastify.addHook('onRequest', (request, reply, done) => { setSecurityHeaders(request.raw, reply.raw, () => { done() }) })
}, { name: 'security-headers', dependencies: ['config'] })
