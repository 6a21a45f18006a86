import fp from 'fastify-plugin'
import { LogLevels, RunningCalls } from '../services/mcp/caller-state.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** What /mcp keeps between its stateless requests: callers' log levels, calls in flight. */
    mcp: { logLevels: LogLevels, running: RunningCalls }
  }
}

export default fp(async (fastify) => {
  fastify.decorate('mcp', { logLevels: new LogLevels(), running: new RunningCalls() })
}, { name: 'mcp', dependencies: [] })
