// Approvals through the HTTP API, for the tests that drive a waiting run: a tenant whose
// data:insert needs approval (its documents count the side effects), a decider's token, and
// reads of a run's status and of the calls it waits on (from its events).
import type { FastifyInstance } from 'fastify'
import { adminHeaders, bearer, createTenant, tokenFor, type TestTenant } from '../helper.ts'
import { waitFor } from './wait-for.ts'
import type { StreamEvent } from '../../schemas/execution-event.ts'
import type { QueuedExecutionsDeps } from '../../services/executions/queued-executions.ts'

export interface View { executionId: string, status: string, result?: { success: boolean, value?: unknown, error?: { code: string, message: string } } }

export const depsOf = (app: FastifyInstance): QueuedExecutionsDeps => (app.executions as unknown as { deps: QueuedExecutionsDeps }).deps

export async function gatedTenant (app: FastifyInstance, label: string, options: Parameters<typeof createTenant>[2] = {}): Promise<TestTenant & { decider: Record<string, string> }> {
  const tenant = await createTenant(app, label, options)
  const put = await app.inject({ method: 'PUT', url: `/admin/tenants/${tenant.tenantId}/tools/data:insert`, headers: adminHeaders(), payload: { approval: 'always' } })
  if (put.statusCode !== 200) throw new Error(put.body)
  return { ...tenant, decider: bearer(tokenFor({ tenantId: tenant.tenantId, userId: `${label}-approver`, permissions: ['approvals:decide'] })) }
}
export async function submit (app: FastifyInstance, tenant: TestTenant, code: string): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/api/executions', headers: tenant.headers, payload: { code } })
  if (res.statusCode !== 202) throw new Error(res.body)
  return (res.json() as { executionId: string }).executionId
}
export const view = async (app: FastifyInstance, tenant: TestTenant, id: string): Promise<View> => (await app.inject({ method: 'GET', url: `/api/executions/${id}`, headers: tenant.headers })).json()
export async function reaches (app: FastifyInstance, tenant: TestTenant, id: string, status: string): Promise<View> {
  const reached = await waitFor(async () => { const v = await view(app, tenant, id); return v.status === status ? v : undefined }, { message: `${id} ${status}`, timeout: 30_000 })
  return reached!
}
export const eventsOf = async (app: FastifyInstance, id: string): Promise<StreamEvent[]> => await depsOf(app).events.read(id, 0, 1000)
/**
 * The calls a run waits on, as its events tell: the approval_required events go out right after
 * the status says awaiting_approval, so a reader waits until `count` are there.
 */
export const pendingOf = async (app: FastifyInstance, id: string, count?: number): Promise<string[]> => {
  if (count !== undefined) return (await waitFor(async () => { const ids = await pendingOf(app, id); return ids.length === count ? ids : undefined }, { message: `${count} pending calls`, timeout: 30_000 }))!
  const events = await eventsOf(app, id)
  const decided = new Set(events.filter((e) => e.type === 'approval_decided').map((e) => e.data.callId))
  return events.filter((e) => e.type === 'approval_required' && !decided.has(e.data.callId)).map((e) => e.data.callId as string)
}
export const decide = async (app: FastifyInstance, tenant: { decider: Record<string, string> }, id: string, payload: Record<string, unknown>) => {
  const res = await app.inject({ method: 'POST', url: `/api/executions/${id}/approvals`, headers: tenant.decider, payload })
  if (res.statusCode !== 200) throw new Error(`decide: ${res.statusCode} ${res.body}`)
  return res.json() as { execution: View }
}
export const documents = async (app: FastifyInstance, tenant: TestTenant): Promise<number> =>
  (await app.inject({ method: 'POST', url: '/api/execute', headers: tenant.headers, payload: { code: "return (await callTool('data:query', {})).length" } })).json().value

/**
 * A run's audit (`GET /api/audit/:id`) once its entry is written: the entry is queued after the
 * run's `final` goes out (the audit is written behind a run, never on its path), so a reader that
 * saw the run end reads until it is there.
 */
export async function auditOf (app: FastifyInstance, headers: Record<string, string>, id: string): Promise<{ entry: { success: boolean, errorCode: string | null }, approvals: Array<{ callId: string, tool: string, approve: boolean, reason: string | null, decidedBy: string, decidedAt: string }> }> {
  return (await waitFor(async () => {
    await app.audit.flush()
    const res = await app.inject({ method: 'GET', url: `/api/audit/${id}`, headers })
    return res.statusCode === 200 ? res.json() : undefined
  }, { message: `the audit entry of ${id}`, timeout: 30_000 }))!
}
