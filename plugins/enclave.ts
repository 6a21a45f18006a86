import fp from 'fastify-plugin'
import { checkSandbox, Enclave } from '../services/enclave/index.ts'

declare module 'fastify' {
  interface FastifyInstance {
    enclave: Enclave
  }
}

/**
 * The sandbox: runner processes with one isolate per tenant. Each run carries its own tool
 * gateway (bound to the caller) as its `tools`. The enclave also keeps each tenant's CPU use to its
 * share of the cores.
 */
export default fp(async (fastify) => {
  // Before any runner starts: under RUNNER_SANDBOX=required a missing layer stops the start here.
  const { confined, missing } = checkSandbox(fastify.config.RUNNER_SANDBOX)
  const enclave = new Enclave({
    securityLevel: 'STRICT',
    runners: fastify.config.ENCLAVE_RUNNERS === 0 ? undefined : fastify.config.ENCLAVE_RUNNERS,
    logger: fastify.log,
    onRunnerExit: () => { fastify.metrics.runnerRestarts.inc() }
  })
  fastify.decorate('enclave', enclave)
  if (confined) fastify.log.info({ runnerProtections: enclave.protections }, 'enclave runners confined')
  else {
    fastify.log.warn({ runnerProtections: enclave.protections, missing }, `enclave runners NOT fully confined (RUNNER_SANDBOX=best-effort), missing: ${missing.map((m) => `${m.layer} (${m.problem}; ${m.remedy})`).join('; ')}`)
  }
  fastify.addHook('onClose', async () => { await enclave.dispose() })
}, { name: 'enclave', dependencies: ['config', 'metrics'] })
