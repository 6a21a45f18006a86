import { useEffect, useRef, useState } from 'preact/hooks'
import { ApiError, AuthError, getJson, getOptionalText, request, type ExecutionResult, type SandboxModule, type Tool } from '../api.ts'
import { completionsFromTools, mergeCompletions, parseToolsDts } from '../completions.ts'
import type { ScriptEditor } from '../editor.ts'
import { formatDuration } from '../format.ts'
import { readEvents, type ExecEvent } from '../event-stream.ts'

const SAMPLE = `// The body of an async function: await tools, return a JSON value.
await callTool('data:insert', { document: { hello: 'world' } })
const docs = await callTool('data:query', { limit: 5 })
console.log('found', docs.length, 'documents')
return docs
`

interface LiveToolCall { index: number, tool: string, code?: string, durationMs?: number }
interface RunView {
  logs: Array<{ level: string, message: string }>
  toolCalls: LiveToolCall[]
  result: ExecutionResult | null
  refusal: string | null
  streamed: boolean
}

/** `(line 3, column 7)` in an error message: where to mark the editor. */
export function errorLocation (message: string): { line: number, column: number } | null {
  const m = /\(line (\d+), column (\d+)\)/.exec(message) ?? /<isolated-vm>:(\d+):(\d+)/.exec(message)
  return m === null ? null : { line: Number(m[1]), column: Number(m[2]) }
}

export function Playground () {
  const [language, setLanguage] = useState<'javascript' | 'typescript'>('javascript')
  const [running, setRunning] = useState(false)
  const [run, setRun] = useState<RunView | null>(null)
  const [editorReady, setEditorReady] = useState(false)
  const [completionNote, setCompletionNote] = useState('Loading tool completions…')
  const hostRef = useRef<HTMLDivElement>(null)
  const fallbackRef = useRef<HTMLTextAreaElement>(null)
  const editorRef = useRef<ScriptEditor | null>(null)
  const runRef = useRef<() => void>(() => {})

  useEffect(() => {
    let cancelled = false
    void import('../editor.ts').then(({ createEditor }) => {
      if (cancelled || hostRef.current === null) return
      const doc = fallbackRef.current?.value ?? SAMPLE
      editorRef.current = createEditor(hostRef.current, { doc, language, onRun: () => { runRef.current() }, labelledBy: 'script-label' })
      setEditorReady(true)
      void loadCompletions().then((c) => {
        editorRef.current?.setTools(c.tools)
        editorRef.current?.setModules(c.modules)
        if (!cancelled) setCompletionNote(c.note)
      })
    })
    return () => { cancelled = true; editorRef.current?.destroy(); editorRef.current = null }
  }, [])

  const code = (): string => editorRef.current?.getCode() ?? fallbackRef.current?.value ?? ''

  const execute = async (): Promise<void> => {
    if (running) return
    setRunning(true)
    editorRef.current?.markError(null)
    const view: RunView = { logs: [], toolCalls: [], result: null, refusal: null, streamed: false }
    setRun({ ...view })
    try {
      // Streams events when the server can (NDJSON); a server without streaming answers JSON.
      const res = await request('/api/execute', {
        method: 'POST',
        headers: { accept: 'application/x-ndjson, application/json;q=0.5' },
        body: JSON.stringify(language === 'typescript' ? { code: code(), language } : { code: code() })
      })
      if ((res.headers.get('content-type') ?? '').includes('ndjson') && res.body !== null) {
        view.streamed = true
        await readEvents(res.body as ReadableStream<BufferSource>, (event) => {
          applyEvent(view, event)
          setRun({ ...view, logs: [...view.logs], toolCalls: [...view.toolCalls] })
        })
      } else {
        view.result = await res.json() as ExecutionResult
      }
      if (view.result !== null) view.logs = view.result.logs
    } catch (err) {
      if (err instanceof AuthError) return
      view.refusal = err instanceof ApiError ? describeRefusal(err, language) : `The request failed: ${(err as Error).message}`
    } finally {
      setRunning(false)
    }
    setRun({ ...view })
    const error = view.result?.error
    if (error !== undefined) {
      const at = errorLocation(error.message)
      if (at !== null) editorRef.current?.markError({ ...at, message: error.message })
    }
  }
  runRef.current = () => { void execute() }

  const result = run?.result ?? null
  return (
    <section aria-labelledby='page-title'>
      <h1 id='page-title' tabIndex={-1}>Playground</h1>
      <div class='toolbar'>
        <label>
          Language{' '}
          <select
            value={language} onChange={(e) => {
              const next = (e.target as HTMLSelectElement).value as 'javascript' | 'typescript'
              setLanguage(next)
              editorRef.current?.setLanguage(next)
            }}
          >
            <option value='javascript'>JavaScript</option>
            <option value='typescript'>TypeScript</option>
          </select>
        </label>
        <button type='button' onClick={() => { void execute() }} disabled={running} aria-keyshortcuts='Control+Enter'>
          {running ? 'Running…' : 'Run'}
        </button>
        <span class='help'>Ctrl/⌘ + Enter runs. {completionNote}</span>
      </div>
      <p id='script-label' class='label'>Script</p>
      <div ref={hostRef} class='editor' data-ready={editorReady ? 'true' : 'false'}>
        {!editorReady && <textarea ref={fallbackRef} aria-labelledby='script-label' rows={12} spellcheck={false} defaultValue={SAMPLE} onKeyDown={(e) => { if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') { e.preventDefault(); void execute() } }} />}
      </div>

      <div class='panels' aria-live='polite'>
        {run?.refusal != null && <p class='error' role='alert' data-testid='refusal'>{run.refusal}</p>}
        {result !== null && (
          <section aria-labelledby='result-title' class={result.success ? 'result ok' : 'result failed'} data-testid='result'>
            <h2 id='result-title'>{result.success ? 'Result' : 'Error'}</h2>
            {result.success
              ? <pre data-testid='result-value'>{JSON.stringify(result.value, null, 2) ?? 'undefined'}</pre>
              : <p data-testid='result-error'><strong>{result.error?.code}</strong> {result.error?.name}: {result.error?.message}</p>}
            <dl class='stats'>
              <dt>Duration</dt><dd data-testid='stat-duration'>{formatDuration(result.stats.duration)}</dd>
              <dt>Tool calls</dt><dd>{result.stats.toolCallCount}</dd>
              {result.stats.cpuTime !== undefined && <><dt>CPU</dt><dd>{formatDuration(result.stats.cpuTime)}</dd></>}
              {result.stats.memoryUsage !== undefined && <><dt>Memory</dt><dd>{Math.round(result.stats.memoryUsage / 1024)} KB</dd></>}
              <dt>Execution</dt><dd><code>{result.executionId}</code></dd>
            </dl>
          </section>
        )}
        {run !== null && (
          <section aria-labelledby='logs-title'>
            <h2 id='logs-title'>Logs {run.streamed ? '(live)' : ''}</h2>
            {run.logs.length === 0
              ? <p class='muted'>{running ? 'Waiting for output…' : 'No logs.'}</p>
              : <ol class='logs' data-testid='logs'>{run.logs.map((l, i) => <li key={i} class={`log-${l.level}`}><span class='level'>{l.level}</span> {l.message}</li>)}</ol>}
          </section>
        )}
        {run !== null && run.streamed && (
          <section aria-labelledby='calls-title'>
            <h2 id='calls-title'>Tool calls</h2>
            {run.toolCalls.length === 0
              ? <p class='muted'>None.</p>
              : <ol class='calls' data-testid='live-calls'>{run.toolCalls.map((c) => <li key={c.index}><code>{c.tool}</code> {c.code === undefined ? '…' : `${c.code} in ${formatDuration(c.durationMs)}`}</li>)}</ol>}
          </section>
        )}
      </div>
    </section>
  )
}

function describeRefusal (err: ApiError, language: string): string {
  const body = err.body
  // A server without TypeScript support refuses the unknown `language` field.
  if (err.status === 400 && language === 'typescript' && /additional properties|language/i.test(String(body.message ?? ''))) return 'This server does not run TypeScript: switch the language to JavaScript.'
  if (err.status === 429 && typeof body.reset === 'string') return `${String(body.error)} (limit ${String(body.limit)}); it resets at ${new Date(body.reset).toLocaleString()}.`
  if (err.status === 413) return `The script is larger than your tier allows (${String(body.limit)} KB).`
  return `${err.status}: ${String(body.error ?? '')}${typeof body.message === 'string' ? ` — ${body.message}` : ''}`
}

function applyEvent (view: RunView, event: ExecEvent): void {
  const data = event.data ?? {}
  if (event.type === 'log') view.logs.push({ level: String(data.level), message: String(data.message) })
  else if (event.type === 'tool_call') view.toolCalls.push({ index: Number(data.index), tool: String(data.tool) })
  else if (event.type === 'tool_result') {
    const call = view.toolCalls.find((c) => c.index === Number(data.index))
    if (call !== undefined) { call.code = String(data.code); call.durationMs = Number(data.durationMs) }
  } else if (event.type === 'final') view.result = data.result as ExecutionResult
}

async function loadCompletions (): Promise<{ tools: ReturnType<typeof mergeCompletions>, modules: SandboxModule[], note: string }> {
  try {
    const [dts, tools, modules] = await Promise.all([
      getOptionalText('/api/tools.d.ts'),
      getJson<{ tools: Tool[] }>('/api/tools').then((r) => r.tools).catch(() => []),
      // A server without sandbox modules (or an older one) completes no imports.
      getJson<{ modules: SandboxModule[] }>('/api/modules').then((r) => r.modules).catch(() => [])
    ])
    const merged = mergeCompletions(dts === null ? [] : parseToolsDts(dts), completionsFromTools(tools))
    const toolNote = merged.length === 0 ? 'No tools to complete.' : `Completes ${merged.length} tools${dts === null ? ' (from /api/tools)' : ''}`
    return { tools: merged, modules, note: modules.length === 0 ? toolNote : `${toolNote.replace(/\.$/, '')} and ${modules.length} importable modules.` }
  } catch {
    return { tools: [], modules: [], note: 'Tool completion unavailable.' }
  }
}
