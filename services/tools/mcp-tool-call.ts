import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js'
import { HttpToolError } from './http-tool-error.ts'
import type { HttpCall, HttpCallResult } from './http-call.ts'
import { McpToolError, type McpToolClient, type McpToolSpec } from './mcp-tool-client.ts'
import { validatorFor } from './schema-validation.ts'
import type { HttpToolSpec, ToolDefinition } from './tool-definition.ts'

const CAUSES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by the upstream',
  UND_ERR_SOCKET: 'connection closed by the upstream',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found (DNS)',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out'
}

/** The first error in a cause chain that has a code, and its code. */
function causeWithCode (err: unknown): { code: unknown, message: string } | undefined {
  let current: unknown = err
  for (let i = 0; i < 5 && current instanceof Error; i++) {
    const code = (current as { code?: unknown }).code
    if (code !== undefined) return { code, message: current.message }
    current = current.cause
  }
  return undefined
}

/**
 * A remote MCP server's tool, called as an HTTP tool is (the runner checks its address and takes its slot): the tenant assertion
 * as bearer, the tool's deadline and byte limit (and TOOL_RESULT_MAX_BYTES), the result checked
 * against its schema. Failures are HttpToolErrors, so the gateway answers TOOL_ERROR with them;
 * the tool's own `isError` text comes through as the cause.
 */
export async function callMcpTool (
  client: McpToolClient,
  tool: ToolDefinition & { http: HttpToolSpec },
  mcp: McpToolSpec,
  args: Record<string, unknown>,
  call: HttpCall,
  options: { assertion: string | Promise<string>, maxResultBytes: number }
): Promise<HttpCallResult> {
  const spec = tool.http
  const toolLimit = spec.maxResponseKB * 1024
  const limit = Math.min(toolLimit, options.maxResultBytes)
  const overLimit = toolLimit <= options.maxResultBytes ? `response body over ${spec.maxResponseKB} KB` : `response body over the tool result limit of ${options.maxResultBytes} bytes (TOOL_RESULT_MAX_BYTES)`
  // One timer for the deadline, the SDK's own (its `timeout`, counted from the call's start);
  // the run's end reaches the SDK through a signal of this call's own, so the SDK's listener on
  // it (never removed) dies with the call instead of piling up on the run's signal.
  const deadline = performance.now() + spec.timeoutMs
  const runEnded = call.runEnded
  const cancel = runEnded === undefined ? undefined : new AbortController()
  const onRunEnded = (): void => { cancel?.abort(runEnded?.reason) }
  runEnded?.addEventListener('abort', onRunEnded, { once: true })
  if (runEnded?.aborted === true) onRunEnded()
  try {
    const { value, resultBytes } = await client.call(spec.url, mcp, args, { assertion: options.assertion, deadline, maxBytes: limit, ...(cancel !== undefined ? { signal: cancel.signal } : {}), tooLarge: () => new HttpToolError(overLimit) })
    if (tool.resultSchema !== undefined) {
      const validator = validatorFor(tool.resultSchema)
      if (!validator.check(value)) throw new HttpToolError(`result does not match resultSchema: ${validator.firstError()}`, 200, resultBytes)
    }
    return { value, upstreamStatus: 200, resultBytes }
  } catch (err) {
    if (err instanceof HttpToolError) throw err
    if (err instanceof McpToolError) throw new HttpToolError(`upstream tool error: ${err.message}`, 200)
    if (runEnded?.aborted === true) throw new HttpToolError('the run ended before the upstream answered')
    // The SDK's timer fired (a cancellation by the run's end is wrapped the same way: told above).
    if (err instanceof McpError && err.code === ErrorCode.RequestTimeout) throw new HttpToolError(`timed out after ${spec.timeoutMs} ms`)
    const cause = err instanceof Error && err.cause instanceof HttpToolError ? err.cause : undefined
    if (cause !== undefined) throw cause
    const found = causeWithCode(err)
    const code = found?.code
    if (typeof code === 'number' && code >= 300 && code < 600) throw new HttpToolError(`upstream answered ${code}`, code)
    // The address guard refused what the server's name resolved to: its message says which and why.
    if (code === 'EREFUSEDADDRESS') throw new HttpToolError(found?.message ?? 'refused address')
    throw new HttpToolError(typeof code === 'string' && CAUSES[code] !== undefined ? CAUSES[code] : 'the MCP server failed to answer')
  } finally {
    runEnded?.removeEventListener('abort', onRunEnded)
  }
}
