import fp from 'fastify-plugin'
import { LogLevels, RunningCalls } from '../services/mcp/caller-state.ts'
import { openInvalidationChannel } from '../services/invalidation-channel.ts'

const CANCEL_CHANNEL = 'tenant-enclave:mcp-cancel'

declare module 'fastify' {
  interface FastifyInstance {
    /** What /mcp keeps between its stateless requests: callers' log levels, calls in flight. */
    mcp: {
      logLevels: LogLevels
      running: RunningCalls
      /** Cancels a caller's call on whichever instance runs it (the store's pub/sub). */
      cancel: (caller: string, requestId: string | number) => Promise<void>
    }
  }
}

export default fp(async (fastify) => {
  const running = new RunningCalls()
  const cancels = openInvalidationChannel(fastify.store, CANCEL_CHANNEL, (key) => { running.cancel(key) }, fastify.log)
  fastify.decorate('mcp', {
    logLevels: new LogLevels(),
    running,
    cancel: async (caller: string, requestId: string | number) => { await cancels.announce(RunningCalls.key(caller, requestId)) }
  })
  fastify.addHook('onClose', async () => { cancels.close() })
}, { name: 'mcp', dependencies: ['store'] })
