import fp from 'fastify-plugin'
import { AuditWriter } from '../services/audit/audit-writer.ts'

declare module 'fastify' {
  interface FastifyInstance {
    audit: AuditWriter
  }
}

// Rows held while PostgreSQL is unreachable (documented in docs/operations.md).
const AUDIT_QUEUE_MAX = 10_000
// Refused requests audited per tenant per minute on one instance (documented in docs/operations.md).
const REFUSALS_AUDITED_PER_MINUTE = 20

export default fp(async (fastify) => {
  const audit = new AuditWriter(fastify.db, fastify.log, {
    maxQueued: AUDIT_QUEUE_MAX,
    retryDelayMs: 250,
    batchDelayMs: 100,
    onLost: (count) => { fastify.metrics.auditRowsLost.inc(count) },
    onWriteFailure: () => { fastify.metrics.auditWriteFailures.inc() },
    refusalsPerTenantPerMinute: REFUSALS_AUDITED_PER_MINUTE,
    onRefusalUnaudited: (tenantId, firstThisMinute) => {
      fastify.metrics.auditRefusalsUnaudited.inc()
      if (firstThisMinute) fastify.log.warn({ tenantId, audited: REFUSALS_AUDITED_PER_MINUTE }, 'more refused requests this minute than are audited; the rest are only counted')
    }
  })
  fastify.decorate('audit', audit)
  // onClose hooks run in reverse order of registration: this one runs before the db closes.
  fastify.addHook('onClose', async () => {
    await audit.flush()
    audit.close()
    if (audit.pending > 0) fastify.log.error({ pending: audit.pending }, 'audit rows could not be written before shutdown')
  })
}, { name: 'audit', dependencies: ['db', 'metrics'] })
