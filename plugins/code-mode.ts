import fp from 'fastify-plugin'
import { ScriptPool } from '../services/code-mode/script-pool.ts'
import { CheckSlots } from '../services/code-mode/check-limits.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Type stripping and pre-flight parsing, on worker threads for large scripts. */
    scripts: ScriptPool
    /** Pre-flight checks in flight per tenant: /api/execute/check and /mcp's check_script share them. */
    checkSlots: CheckSlots
  }
}

export default fp(async (fastify) => {
  const scripts = new ScriptPool()
  fastify.decorate('scripts', scripts)
  fastify.decorate('checkSlots', new CheckSlots())
  fastify.addHook('onClose', async () => { await scripts.close() })
}, { name: 'code-mode', dependencies: [] })
