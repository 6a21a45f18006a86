import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

function createMetrics () {
  // One registry per app instance, so several apps in one process (tests) never collide.
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'tenant_enclave_process_' })
  const registers = [registry]
  return {
    registry,
    executions: new Counter({ name: 'tenant_enclave_executions_total', help: 'Executions that ended, by outcome code (OK or the error code): synchronous, session and queued runs alike', labelNames: ['code'], registers }),
    executionDuration: new Histogram({ name: 'tenant_enclave_execution_duration_seconds', help: 'Wall time of executions that ended (a run lost with its instance has none)', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 300], registers }),
    executionsInFlight: new Gauge({ name: 'tenant_enclave_executions_in_flight', help: 'Executions running now on this instance', registers }),
    toolCalls: new Counter({ name: 'tenant_enclave_tool_calls_total', help: 'Tool calls by tool and outcome (OK or the error code)', labelNames: ['tool', 'outcome'], registers }),
    quotaRefusals: new Counter({ name: 'tenant_enclave_quota_refusals_total', help: 'Requests refused before running, by kind', labelNames: ['kind'], registers }),
    runnerRestarts: new Counter({ name: 'tenant_enclave_runner_restarts_total', help: 'Enclave runner processes replaced after dying', registers }),
    auditWriteFailures: new Counter({ name: 'tenant_enclave_audit_write_failures_total', help: 'Failed audit batch writes (they are retried)', registers }),
    auditRowsLost: new Counter({ name: 'tenant_enclave_audit_rows_lost_total', help: 'Audit rows dropped because the retry queue overflowed', registers }),
    auditRefusalsUnaudited: new Counter({ name: 'tenant_enclave_audit_refusals_unaudited_total', help: 'Refused requests past the per-tenant audit bound (20 a minute): counted here, not written', registers })
  }
}

export type Metrics = ReturnType<typeof createMetrics>

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

export default fp(async (fastify) => {
  fastify.decorate('metrics', createMetrics())
}, { name: 'metrics' })
