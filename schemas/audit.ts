import { Type } from 'typebox'
import { BeforeCursor, PageLimit } from './paging.ts'

// An audit entry's public id is random (UUID v4), so consecutive ids say nothing about how many
// rows other tenants wrote in between.

export const AuditEntrySchema = Type.Object({
  id: Type.String({ format: 'uuid', description: 'Opaque; pass as `before` to read the next page' }),
  executionId: Type.String(),
  userId: Type.String(),
  action: Type.Enum(['code_execution', 'execution_refused', 'mcp.execute'], { description: 'mcp.execute: a run started by execute_script over /mcp; counted like code_execution' }),
  codeSha256: Type.Union([Type.String(), Type.Null()]),
  success: Type.Boolean(),
  errorCode: Type.Union([Type.String(), Type.Null()]),
  durationMs: Type.Union([Type.Integer(), Type.Null()]),
  toolCalls: Type.Integer(),
  cpuMs: Type.Union([Type.Integer(), Type.Null()], { description: 'The run\'s meter (its stats): null for refusals and entries written before the meter was kept' }),
  peakHeapBytes: Type.Union([Type.Integer(), Type.Null()]),
  toolTimeMs: Type.Union([Type.Integer(), Type.Null()]),
  bytesIn: Type.Union([Type.Integer(), Type.Null()]),
  bytesOut: Type.Union([Type.Integer(), Type.Null()]),
  createdAt: Type.String({ format: 'date-time' })
}, { $id: 'AuditEntry' })

/** Entries per page when the caller names no `limit`. */
export const AUDIT_PAGE_DEFAULT = 50

export const AuditListQuery = Type.Object({
  limit: Type.Optional(PageLimit({ max: 500, defaultLimit: AUDIT_PAGE_DEFAULT })),
  before: Type.Optional(BeforeCursor('An entry id: only older entries are listed'))
}, { additionalProperties: false })

export const AuditPage = Type.Object({
  entries: Type.Array(AuditEntrySchema),
  nextBefore: Type.Union([Type.String(), Type.Null()], { description: 'Pass as `before` for the next page; null on the last one' })
}, { $id: 'AuditPage' })

export const ToolCallSchema = Type.Object({
  callIndex: Type.Integer({ description: 'Order of the call in its run (0-based); upstreams see it in idempotency-key' }),
  tool: Type.String(),
  code: Type.String({ description: 'OK or the error code the script saw' }),
  durationMs: Type.Integer(),
  argsSha256: Type.String(),
  argsBytes: Type.Integer(),
  resultBytes: Type.Union([Type.Integer(), Type.Null()]),
  upstreamStatus: Type.Union([Type.Integer(), Type.Null()], { description: 'HTTP status from a platform tool\'s upstream' }),
  createdAt: Type.String({ format: 'date-time' })
}, { $id: 'AuditToolCall' })

export const ApprovalDecisionSchema = Type.Object({
  callId: Type.String({ description: 'call-<position>, or grant-<n> for an approveAll with forTool and maxCalls (its further calls)' }),
  tool: Type.String(),
  approve: Type.Boolean(),
  reason: Type.Union([Type.String(), Type.Null()]),
  decidedBy: Type.String({ description: 'The deciding token\'s userId' }),
  decidedAt: Type.String({ format: 'date-time' })
}, { $id: 'AuditApprovalDecision' })

export const ExecutionAudit = Type.Object({
  entry: AuditEntrySchema,
  toolCalls: Type.Array(ToolCallSchema),
  approvals: Type.Array(ApprovalDecisionSchema, { description: 'Decisions on the run\'s gated calls (POST /api/executions/:id/approvals), in the order they were made' })
}, { $id: 'ExecutionAudit' })

export const ExecutionIdParams = Type.Object({ executionId: Type.String({ minLength: 1, maxLength: 128 }) })
