import fp from 'fastify-plugin'
import { Enclave } from '../services/enclave/index.ts'
import { CpuFairScheduler } from '../services/execution/cpu-fair-scheduler.ts'

declare module 'fastify' {
  interface FastifyInstance {
    enclave: Enclave
    /** Keeps one tenant's CPU-bound scripts from taking every core. */
    cpuScheduler: CpuFairScheduler
  }
}

type CallTool = (name: string, args: unknown) => Promise<unknown>

/**
 * The sandbox: runner processes with one isolate per tenant. Each run carries its own tool
 * gateway (bound to the caller) as its context, so the enclave's single handler only forwards.
 */
export default fp(async (fastify) => {
  const enclave = new Enclave({
    securityLevel: 'STRICT',
    runners: fastify.config.ENCLAVE_RUNNERS === 0 ? undefined : fastify.config.ENCLAVE_RUNNERS,
    logger: fastify.log,
    toolHandler: async (name, args, context) => await (context as CallTool)(name, args),
    onRunnerExit: () => { fastify.metrics.runnerRestarts.inc() }
  })
  fastify.decorate('enclave', enclave)
  fastify.decorate('cpuScheduler', new CpuFairScheduler())
  fastify.addHook('onClose', async () => { await enclave.dispose() })
}, { name: 'enclave', dependencies: ['config', 'metrics'] })
