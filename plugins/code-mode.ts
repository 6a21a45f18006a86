import fp from 'fastify-plugin'
import { ScriptPool } from '../services/code-mode/script-pool.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Type stripping and pre-flight parsing, on worker threads for large scripts. */
    scripts: ScriptPool
  }
}

export default fp(async (fastify) => {
  const scripts = new ScriptPool()
  fastify.decorate('scripts', scripts)
  fastify.addHook('onClose', async () => { await scripts.close() })
}, { name: 'code-mode', dependencies: [] })
