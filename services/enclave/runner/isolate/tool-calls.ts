// callTool: a JSON string goes out, a JSON string comes back (parsed here), so no object crosses.
import type { Intrinsics } from './intrinsics.ts'
import type { RunState } from './run-state.ts'
import type { Nondeterminism } from './nondeterminism.ts'

interface PendingCall { resolve: (value: unknown) => void, reject: (reason: Error) => void }
/** What a ToolError said, kept apart from the error object the script can change. */
export interface ToolErrorRecord { code: string, message: string }

export type ToolCalls = ReturnType<typeof installToolCalls>

export function installToolCalls (k: Intrinsics, run: RunState, drawn: Nondeterminism) {
  const { G, hide, expose, apply, defineProperty, stringify, parse, PromiseCtor, ErrorCtor, MapCtor, mapGet, mapSet, mapDelete, WeakMapCtor, weakSet } = k
  const pending = new MapCtor<number, PendingCall>()
  const toolErrors = new WeakMapCtor<Error, ToolErrorRecord>()
  let calls = 0
  let seq = 0

  function toolError (code: string, message: string): Error {
    const e = new ErrorCtor(message)
    const name = code === 'APPROVAL_REJECTED' ? 'ApprovalRejectedError' : 'ToolError'
    hide(e, 'name', name)
    defineProperty(e, 'code', { value: code, writable: true, enumerable: true, configurable: true })
    hide(e, 'stack', name + ': ' + message)
    apply(weakSet, toolErrors, [e, { code, message }])
    return e
  }
  // Refused here, told to the host all the same: every call is audited. The message is built
  // after the host is told (it may run the script's own code, a getter on what it threw).
  function refuseCall (reject: PendingCall['reject'], name: string, size: number, message: string | (() => string)): void {
    const send = run.send!
    send('F', 'TOOL_ERROR', name, size, run.takeLogs())
    reject(toolError('TOOL_ERROR', typeof message === 'string' ? message : message()))
  }
  function callTool (name: unknown, args: unknown): Promise<unknown> {
    return new PromiseCtor(function (resolve, reject) {
      if (run.aborted !== null) { reject(run.abortError()); return }
      const send = run.send
      if (send === null) { reject(toolError('TOOL_ERROR', 'callTool is not available')); return }
      const { maxCalls, maxArgs } = run
      if (++calls > maxCalls) run.trip('MAX_TOOL_CALLS', 'Tool call limit exceeded: at most ' + maxCalls + ' calls per execution', typeof name === 'string' ? name : '')
      if (typeof name !== 'string') { refuseCall(reject, '', 0, 'Tool name must be a string'); return }
      let json: string | undefined = ''
      if (args !== undefined) {
        try {
          json = stringify(args) as string | undefined
        } catch (e) {
          refuseCall(reject, name, 0, () => 'Tool arguments are not JSON-serialisable: ' + run.describeThrown(e))
          return
        }
        if (json === undefined) { refuseCall(reject, name, 0, 'Tool arguments are not JSON-serialisable'); return }
        // Measured here, before anything is copied out of the isolate (UTF-8 never has fewer
        // bytes than UTF-16 units; the host counts the exact bytes of what passes).
        if (json.length > maxArgs) { refuseCall(reject, name, json.length, 'Tool arguments exceed ' + maxArgs + ' bytes'); return }
      }
      if (run.aborted !== null) { reject(run.abortError()); return }
      const id = ++seq
      apply(mapSet, pending, [id, { resolve, reject }])
      // The values drawn before this call go with it: a suspension at this call keeps them all.
      const logs = run.takeLogs()
      const values = drawn.take()
      if (values === '') send('C', id, name, json, logs)
      else send('C', id, name, json, logs, values)
    })
  }
  hide(G, 'callTool', expose(callTool, 'callTool'))

  /** Settles a pending call with the host's answer: `v` a JSON value ('' for undefined), else a JSON refusal. */
  function deliver (id: number, kind: 'v' | 'e', data: string): void {
    const entry = apply(mapGet, pending, [id]) as PendingCall | undefined
    if (entry === undefined) return
    apply(mapDelete, pending, [id])
    if (kind === 'v') {
      let value: unknown
      if (data !== '') {
        try { value = parse(data) } catch (_) { entry.reject(toolError('TOOL_ERROR', 'Tool result is not valid JSON')); return }
      }
      entry.resolve(value)
      return
    }
    let code = 'TOOL_ERROR'
    let message = 'Tool call failed'
    try {
      const err = parse(data) as Partial<ToolErrorRecord>
      if (typeof err.code === 'string') code = err.code
      if (typeof err.message === 'string') message = err.message
    } catch (_) {}
    entry.reject(toolError(code, message))
  }
  return { deliver, toolErrors }
}
