import fp from 'fastify-plugin'
import fastifyHelmet from '@fastify/helmet'

/**
 * Security headers on every response (@fastify/helmet: nosniff, frame and referrer policy, HSTS,
 * ...). The API answers JSON only, so its CSP allows nothing to load or frame it; Swagger UI's
 * pages under /docs set their own, looser CSP (plugins/swagger.ts).
 */
export default fp(async (fastify) => {
  await fastify.register(fastifyHelmet, {
    global: true,
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
}, { name: 'security-headers', dependencies: ['config'] })
