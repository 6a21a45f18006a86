import type { AuditEntry, AuditWriter } from '../audit/audit-writer.ts'
import type { ToolCaller } from '../execution/tool-gateway.ts'
// The one import of the execution path for /mcp: the same run as POST /api/execute.
import { executeObserved, type ObservedOutcome } from '../execution/observed-execution.ts'
import type { ExecutionDeps, ExecutionRequest } from '../execution/execute-script.ts'

type Observe = Parameters<typeof executeObserved>[1]

/**
 * The audit writer of an MCP run: its row says `mcp.execute` where a REST run's says
 * `code_execution` (refusals stay `execution_refused`); tool-call rows are unchanged.
 */
function mcpAudit (writer: AuditWriter): AuditWriter {
  const audit: Pick<AuditWriter, 'enqueue' | 'enqueueToolCall'> = {
    enqueue: (entry: AuditEntry) => { writer.enqueue(entry.action === 'code_execution' ? { ...entry, action: 'mcp.execute' } : entry) },
    enqueueToolCall: (entry) => { writer.enqueueToolCall(entry) }
  }
  // The execution path only enqueues.
  return audit as AuditWriter
}

/** Runs a script for execute_script: quotas, audit, metrics and tools exactly as REST. */
export async function executeForMcp (deps: ExecutionDeps, observe: Observe, caller: ToolCaller, request: ExecutionRequest): Promise<ObservedOutcome> {
  return await executeObserved({ ...deps, audit: mcpAudit(deps.audit) }, observe, caller, request)
}
