import t from 'tap'
import { completionsFromTools, mergeCompletions, parseToolsDts } from '../../console/src/completions.ts'

// The shape GET /api/tools.d.ts has (one JSDoc'd overload per tool, arguments by a named type),
// and an inline one.
const DTS = `/** Captured: the lines come back in the result's \`logs\`. */
declare const console: EnclaveConsole

/**
 * \`data:query\`: Query documents
 */
declare namespace Tools.DataQuery {
  export interface Args { collection?: string; filter?: Record<string, unknown>; limit?: number }
}

/**
 * Query documents of the tenant's collection
 */
declare function callTool (name: "data:query", args: Tools.DataQuery.Args): Promise<Tools.DataQuery.Result>
/** Insert one document */
declare function callTool (name: 'data:insert', args: { collection?: string; document: { [k: string]: unknown } }): Promise<unknown>
`

t.test('tool completions from the .d.ts, argument names from the schema where the .d.ts names a type', async (t) => {
  const fromDts = parseToolsDts(DTS)
  t.same(fromDts.map((c) => [c.name, c.info, c.args]), [
    ['data:query', 'Query documents of the tenant\'s collection', []],
    ['data:insert', 'Insert one document', ['collection', 'document']]
  ])
  const fromTools = completionsFromTools([
    { name: 'data:query', description: 'q', argsSchema: { properties: { collection: {}, filter: {}, limit: {} } }, enabled: true, permitted: true, rateLimit: null },
    { name: 'data:delete', description: 'd', argsSchema: { properties: { filter: {} } }, enabled: true, permitted: false, rateLimit: null },
    { name: 'other:tool', description: 'o', argsSchema: {}, enabled: true, permitted: true, rateLimit: null }
  ])
  t.same(fromTools.map((c) => c.name), ['data:query', 'other:tool'], 'only tools the caller may call')
  t.same(mergeCompletions(fromDts, fromTools).map((c) => [c.name, c.args]), [
    ['data:query', ['collection', 'filter', 'limit']],
    ['data:insert', ['collection', 'document']],
    ['other:tool', []]
  ])
  t.same(parseToolsDts('/** This token may call no tool. */\ndeclare function callTool (name: never, args: never): Promise<never>\n'), [], 'no tool, nothing offered')
})
