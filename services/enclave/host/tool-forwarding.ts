// A tool call forwarded from a runner to the handler, and its reply back in the runner's terms.
// This is on every tool call's path, so it does no work for what nobody asked for (events are built
// only for watched runs) and adds no promise hops of its own around the handler's.
import type { CallMessage, RefusedCallMessage, ToolResultMessage } from '../protocol/messages.ts'
import type { EnclaveLogger, ToolHandler } from '../common/types.ts'
import { reportDrawn, reportEvent, type PendingRun } from './pending-run.ts'
import { parseToolArgs, toolFailure, toolResultJson } from './tool-bridge.ts'

/** Starts the handler; a synchronous throw (bad arguments, no handler) becomes its rejection. */
function startHandler (run: PendingRun, msg: CallMessage, fallback: ToolHandler | undefined): Promise<unknown> {
  try {
    const args = parseToolArgs(msg.a)
    const handler = run.tools ?? fallback
    if (handler === undefined) throw Object.assign(new Error(`Tool not found: ${msg.n}`), { code: 'TOOL_NOT_FOUND' })
    return Promise.resolve(handler(msg.n, args, run.context, run.ended.signal))
  } catch (err) {
    return Promise.reject(err)
  }
}

/** A call the runner checked and forwarded: counted, reported to watchers, answered unless the run ended. */
export function onToolCall (run: PendingRun, msg: CallMessage, fallback: ToolHandler | undefined, logger: EnclaveLogger | undefined): void {
  run.toolCalls++
  run.callIds.add(msg.c)
  reportDrawn(run, msg.r, logger)
  const watched = run.onEvent !== undefined
  const callStarted = watched ? performance.now() : 0
  if (watched) reportEvent(run, { type: 'tool_call', index: msg.c, tool: msg.n }, logger)
  const answer = (ret: ToolResultMessage): void => {
    run.callIds.delete(msg.c)
    if (watched) {
      const code = ret.e === undefined ? 'OK' : ret.e.code
      reportEvent(run, { type: 'tool_result', index: msg.c, code, durationMs: Math.round((performance.now() - callStarted) * 1000) / 1000 }, logger)
    }
    if (!run.done) run.runner?.send(ret)
  }
  const failed = (err: unknown): void => {
    const { e, f } = toolFailure(err)
    answer(f === true ? { t: 'ret', id: run.wireId, c: msg.c, e, f } : { t: 'ret', id: run.wireId, c: msg.c, e })
  }
  startHandler(run, msg, fallback).then((value) => {
    let v: string
    try { v = toolResultJson(value) } catch (err) { failed(err); return }
    answer({ t: 'ret', id: run.wireId, c: msg.c, v })
  }, failed)
}

/** A call the runner refused before forwarding it: counted, and told to the caller so it is audited like any other. */
export function onRefusedCall (run: PendingRun, msg: RefusedCallMessage, logger: EnclaveLogger | undefined): void {
  run.refusedCalls++
  if (run.done) return
  try { run.onToolRefused?.({ tool: msg.n, code: msg.code, argsBytes: msg.b }) } catch (err) { logger?.error({ err }, 'onToolRefused failed') }
}
