import fp from 'fastify-plugin'
import { ScriptPool } from '../services/code-mode/script-pool.ts'
import { CHECK_INLINE_BELOW_BYTES, CHECK_THREAD_NICE, CHECK_THREADS, CheckSlots } from '../services/code-mode/check-limits.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Type stripping of runs' scripts, on worker threads for large ones. */
    scripts: ScriptPool
    /** Pre-flight checks' stripping and parsing: every tenant's on one thread of their own. */
    checkScripts: ScriptPool
    /** Pre-flight checks in flight per tenant: /api/execute/check and /mcp's check_script share them. */
    checkSlots: CheckSlots
  }
}

export default fp(async (fastify) => {
  const scripts = new ScriptPool()
  fastify.decorate('scripts', scripts)
  // Checks apart from runs: a flood of checks queues for the check thread, never in front of a
  // run's stripping.
  const checkScripts = new ScriptPool({ inlineBelowBytes: CHECK_INLINE_BELOW_BYTES, maxThreads: CHECK_THREADS, niceIncrement: CHECK_THREAD_NICE })
  fastify.decorate('checkScripts', checkScripts)
  fastify.decorate('checkSlots', new CheckSlots())
  fastify.addHook('onClose', async () => { await Promise.all([scripts.close(), checkScripts.close()]) })
}, { name: 'code-mode', dependencies: [] })
