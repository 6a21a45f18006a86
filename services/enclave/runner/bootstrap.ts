// Source of the code that prepares every context before any tenant code runs in it, assembled
// from the typed functions in isolate/ with Function.prototype.toString. Why toString and not a
// build step (esbuild): it needs nothing at start or build time and works the same from the
// sources (Node's type stripping turns types into whitespace, so the text V8 keeps is plain
// JavaScript) and from dist/ (tsc output); the runner, which may not start processes, builds it
// itself. The cost: those functions may use only their parameters and the isolate's globals,
// which dependency-cruiser checks (isolate/ imports types only) and the enclave corpus exercises.
//
// It is compiled once per isolate and run once per fresh context (while the context is pre-warmed,
// off the request path). Its completion value is `[init, deliver]`, reachable only through
// host-side References: `init(send, alarm, configJson, source)` compiles and starts the tenant's code,
// `deliver(id, kind, data)` settles a pending callTool.
//
// Rules this code keeps, because tenant code shares the realm with it:
// - strict mode everywhere (the wrapper's directive covers every part): V8 hides strict frames'
//   functions from CallSite.getFunction() and `.caller`, so tenant code can never obtain `send`,
//   `init` or `deliver` from a stack trace;
// - every built-in it needs is captured before tenant code runs (isolate/intrinsics.ts), and
//   called via Reflect.apply, so patched prototypes cannot intercept it;
// - host functions are called directly on local variables (no .call/.apply lookups);
// - only strings and numbers go to the host, only strings come back (parsed here).
import { captureConsole } from './isolate/console-capture.ts'
import { lockCodeGeneration } from './isolate/code-generation.ts'
import { captureIntrinsics } from './isolate/intrinsics.ts'
import { guardMemory } from './isolate/memory-guards.ts'
import { createRunState } from './isolate/run-state.ts'
import { scriptOutcome } from './isolate/script-outcome.ts'
import { installToolCalls } from './isolate/tool-calls.ts'
import { installNondeterminism } from './isolate/nondeterminism.ts'

export const BOOTSTRAP_SOURCE = `(function () {
'use strict'
const k = (${captureIntrinsics.toString()})()
;(${lockCodeGeneration.toString()})(k)
const run = (${createRunState.toString()})(k)
const drawn = (${installNondeterminism.toString()})(k)
;(${captureConsole.toString()})(k, run)
const tools = (${installToolCalls.toString()})(k, run, drawn)
;(${guardMemory.toString()})(k, run)
return [(${scriptOutcome.toString()})(k, run, tools, drawn), tools.deliver]
})()`
