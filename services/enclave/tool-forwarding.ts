// A tool call forwarded from a runner to the handler, and its reply back in the runner's terms.
import type { PendingRun } from './enclave.ts'
import type { CallMessage } from './protocol.ts'
import { parseToolArgs, toolFailure, toolResultJson } from './tool-bridge.ts'
import type { ToolHandler } from './types.ts'

export type ToolReply = { v: string } | ReturnType<typeof toolFailure>

export async function forwardToolCall (run: PendingRun, msg: CallMessage, fallback: ToolHandler | undefined): Promise<ToolReply> {
  try {
    const args = parseToolArgs(msg.a)
    const handler = run.tools ?? fallback
    if (handler === undefined) throw Object.assign(new Error(`Unknown tool: ${msg.n}`), { code: 'UNKNOWN_TOOL' })
    return { v: toolResultJson(await handler(msg.n, args, run.context)) }
  } catch (err) {
    return toolFailure(err)
  }
}
