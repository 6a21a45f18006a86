import { Type, type Static } from 'typebox'
import { ExecutionResultSchema } from '../../schemas/execution-result.ts'

// The four code-mode tools as a model sees them: names, descriptions written for a model, and
// JSON Schemas (TypeBox) that both advertise and validate the arguments.

const Code = Type.String({ minLength: 1, description: 'The body of an async function: use `await callTool(name, args)` and `return` the result you want. Top-level await works; console.log lines come back too.' })
const Language = Type.Optional(Type.Union([Type.Literal('javascript'), Type.Literal('typescript')], { description: 'typescript: types are erased before the run (not checked). Default javascript.' }))

const SearchInput = Type.Object({
  query: Type.String({ maxLength: 500, description: 'Words that must appear in a tool\'s name or description, e.g. "query rows" or "weather"; empty lists every callable tool' }),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'At most this many tools (default 20)' }))
}, { additionalProperties: false })

const DescribeInput = Type.Object({
  names: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { minItems: 1, maxItems: 100, description: 'Tool names as search_tools returned them, e.g. ["data:query"]' })),
  modules: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 214 }), { minItems: 1, maxItems: 50, description: 'Sandbox modules whose type declarations to include, e.g. ["zod"]; every answer lists the modules a script may import' }))
}, { additionalProperties: false })

const CheckInput = Type.Object({ code: Code, language: Language }, { additionalProperties: false })

const ExecuteInput = Type.Object({
  code: Code,
  language: Language,
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 3_600_000, description: 'May lower the tenant\'s time limit, never raise it' }))
}, { additionalProperties: false })

const Position = { line: Type.Integer({ minimum: 1 }), column: Type.Integer({ minimum: 1 }) }
const CheckOutput = Type.Object({
  ok: Type.Boolean(),
  errors: Type.Array(Type.Object({ code: Type.String(), message: Type.String(), ...Position })),
  toolCalls: Type.Array(Type.Object({ name: Type.String(), ...Position, exists: Type.Boolean(), enabled: Type.Boolean(), permitted: Type.Boolean() })),
  dynamicToolCalls: Type.Integer({ minimum: 0 })
})

const SearchOutput = Type.Object({ tools: Type.Array(Type.Object({ name: Type.String(), description: Type.String() })) })

const READ_ONLY = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false }

export const CODE_MODE_TOOLS = {
  search_tools: {
    title: 'Search tools',
    description: 'Find the tools a script can call with this token: returns names and one-line descriptions of those matching every word of the query. Start here, then describe_tools the ones you need.',
    input: SearchInput,
    output: SearchOutput,
    annotations: READ_ONLY
  },
  describe_tools: {
    title: 'Describe tools',
    description: 'TypeScript declarations of the named tools: one `callTool(name, args): Promise<Result>` overload each, with exact argument and result types. Read them before writing a script that calls those tools. Also lists the npm modules a script may import (e.g. `import { z } from \'zod\'`) with their versions; give `modules` to get their type declarations too.',
    input: DescribeInput,
    output: undefined,
    annotations: READ_ONLY
  },
  check_script: {
    title: 'Check a script',
    description: 'Pre-flight a script without running it or using quota: syntax, forbidden constructs, and whether each literal callTool name exists, is enabled and is permitted. Returns ok, errors with line and column, and the tool calls found.',
    input: CheckInput,
    output: CheckOutput,
    annotations: READ_ONLY
  },
  execute_script: {
    title: 'Execute a script',
    description: 'Run a script in the tenant\'s sandbox and return its result: `value` (what the script returned), `logs`, `stats`, or `error` with a stable code (TIMEOUT, TOOL_ERROR, PERMISSION_DENIED, ...). Do several tool calls in one script rather than one script per call; filter and aggregate in the script so only what you need comes back. Counts against the tenant\'s quotas.',
    input: ExecuteInput,
    output: ExecutionResultSchema,
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true }
  }
} as const

export type CheckArgs = Static<typeof CheckInput>
export type ExecuteArgs = Static<typeof ExecuteInput>
