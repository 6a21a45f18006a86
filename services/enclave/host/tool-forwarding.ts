// A tool call forwarded from a runner to the handler, and its reply back in the runner's terms.
import type { CallMessage } from '../protocol/messages.ts'
import type { EnclaveLogger, ToolHandler } from '../common/types.ts'
import { reportEvent, type PendingRun } from './pending-run.ts'
import { parseToolArgs, toolFailure, toolResultJson } from './tool-bridge.ts'

export type ToolReply = { v: string } | ReturnType<typeof toolFailure>

export async function forwardToolCall (run: PendingRun, msg: CallMessage, fallback: ToolHandler | undefined): Promise<ToolReply> {
  try {
    const args = parseToolArgs(msg.a)
    const handler = run.tools ?? fallback
    if (handler === undefined) throw Object.assign(new Error(`Tool not found: ${msg.n}`), { code: 'TOOL_NOT_FOUND' })
    return { v: toolResultJson(await handler(msg.n, args, run.context, run.ended.signal)) }
  } catch (err) {
    return toolFailure(err)
  }
}

/** A call the runner checked and forwarded: counted, reported to watchers, answered unless the run ended. */
export function onToolCall (run: PendingRun, msg: CallMessage, fallback: ToolHandler | undefined, logger: EnclaveLogger | undefined): void {
  run.toolCalls++
  run.callIds.add(msg.c)
  const callStarted = performance.now()
  reportEvent(run, { type: 'tool_call', index: msg.c, tool: msg.n }, logger)
  void forwardToolCall(run, msg, fallback).then((reply) => {
    run.callIds.delete(msg.c)
    reportEvent(run, { type: 'tool_result', index: msg.c, code: 'e' in reply && reply.e !== undefined ? reply.e.code : 'OK', durationMs: Math.round((performance.now() - callStarted) * 1000) / 1000 }, logger)
    if (!run.done) run.runner?.send({ t: 'ret', id: run.wireId, c: msg.c, ...reply })
  })
}
