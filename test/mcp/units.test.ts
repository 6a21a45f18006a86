// The small pure parts of the MCP feature, without a server.
import t from 'tap'
import { LogLevels, RunningCalls } from '../../services/mcp/caller-state.ts'
import { oneLine, renderResult } from '../../services/mcp/code-mode-server.ts'
import { scriptValue } from '../../services/tools/mcp-tool-client.ts'

t.test('oneLine keeps the first line or sentence, at most 200 characters', async (t) => {
  t.equal(oneLine('Find documents. Filters are exact.'), 'Find documents.')
  t.equal(oneLine('First line\nsecond line'), 'First line')
  t.equal(oneLine('x'.repeat(300)).length, 200)
})

t.test('renderResult: the value or the error, logs, stats', async (t) => {
  const stats = { duration: 12.4, toolCallCount: 2 }
  t.match(renderResult({ executionId: 'e1', success: true, value: { a: 1 }, logs: [{ level: 'log', message: 'hi' }], stats }), /^Returned: \{"a":1\}\n\[log\] hi\n\(12 ms, 2 tool calls, execution e1\)$/)
  t.match(renderResult({ executionId: 'e2', success: false, error: { name: 'Error', code: 'TIMEOUT', message: 'too slow' }, logs: [], stats }), /^TIMEOUT: too slow\n/)
  t.match(renderResult({ executionId: 'e3', success: true, value: 'y'.repeat(5000), logs: [], stats }), /truncated; the whole value is in structuredContent/)
  t.match(renderResult({ executionId: 'e4', success: true, logs: Array.from({ length: 25 }, () => ({ level: 'log' as const, message: 'l' })), stats }), /5 more log lines/)
})

t.test('LogLevels: everything until a level is set, then that level and above', async (t) => {
  const levels = new LogLevels(1000, 2)
  t.ok(levels.allows('a', 'debug'))
  levels.set('a', 'warning')
  t.notOk(levels.allows('a', 'info'))
  t.ok(levels.allows('a', 'error'))
  t.ok(levels.allows('b', 'debug'), 'per caller')
  levels.set('b', 'error')
  levels.set('c', 'error')
  t.ok(levels.allows('a', 'info'), 'the oldest is forgotten past maxEntries')
})

t.test('RunningCalls: a cancel finds its call by caller and request id, once forgotten it does not', async (t) => {
  const running = new RunningCalls()
  const controller = new AbortController()
  const forget = running.add('tenant\u0000user\u0000s1', 7, controller)
  t.notOk(running.cancel(RunningCalls.key('tenant\u0000user\u0000s2', 7)), 'another session\'s id 7 is another call')
  t.ok(running.cancel(RunningCalls.key('tenant\u0000user\u0000s1', 7)))
  t.ok(controller.signal.aborted)
  forget()
  t.equal(running.size, 0)
})

t.test('scriptValue: structuredContent, else JSON text, else text, else the content', async (t) => {
  t.same(scriptValue({ content: [{ type: 'text', text: '{"a":1}' }], structuredContent: { b: 2 } }), { b: 2 })
  t.same(scriptValue({ content: [{ type: 'text', text: '{"a":1}' }] }), { a: 1 })
  t.equal(scriptValue({ content: [{ type: 'text', text: 'plain' }] }), 'plain')
  const image = [{ type: 'image' as const, data: 'AA==', mimeType: 'image/png' }]
  t.same(scriptValue({ content: image }), image)
})
