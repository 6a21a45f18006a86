import { useEffect, useState } from 'preact/hooks'
import { ApiError, AuthError, getJson, request, sendJson, type ExecutionRun } from '../api.ts'
import { readEvents, type ExecEvent } from '../event-stream.ts'

// Pending approvals: every run of the tenant that waits for a decision, its pending calls with
// their arguments and its logs so far, read from the run's own event stream, so the page follows
// the run live (a decision, a resume that suspends again, the end) without polling the run.

/** How often the list of waiting runs is read again (new runs that start waiting). */
const LIST_REFRESH_MS = 4000
const SHOWN_RUNS = 20

interface PendingCall { callId: string, tool: string, args: unknown, position: number }
interface LogLine { level: string, message: string }
interface WaitingView { pending: PendingCall[], logs: LogLine[], ended: boolean }

/** A run's view after one more event of its stream. */
export function applyApprovalEvent (view: WaitingView, event: ExecEvent): WaitingView {
  const data = event.data ?? {}
  if (event.type === 'log') return { ...view, logs: [...view.logs, { level: String(data.level), message: String(data.message) }] }
  if (event.type === 'approval_required') {
    const call = { callId: String(data.callId), tool: String(data.tool), args: data.args, position: Number(data.position) }
    return { ...view, pending: [...view.pending.filter((c) => c.callId !== call.callId), call] }
  }
  if (event.type === 'approval_decided') return { ...view, pending: view.pending.filter((c) => c.callId !== String(data.callId)) }
  if (event.type === 'final') return { ...view, pending: [], ended: true }
  return view
}

export function ApprovalsPage () {
  const [runs, setRuns] = useState<ExecutionRun[] | null>(null)
  const [error, setError] = useState<string | null>(null)

  useEffect(() => {
    let stopped = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const load = (): void => {
      getJson<{ executions: ExecutionRun[] }>(`/api/executions?status=awaiting_approval&limit=${SHOWN_RUNS}`).then((page) => {
        if (stopped) return
        setError(null)
        // A run keeps its card (and its open stream) for as long as it is listed.
        setRuns((before) => sameIds(before, page.executions) ? before : page.executions)
      }, (err: Error) => { if (!stopped && !(err instanceof AuthError)) setError(err.message) }).finally(() => {
        if (!stopped) timer = setTimeout(load, LIST_REFRESH_MS)
      })
    }
    load()
    return () => { stopped = true; clearTimeout(timer) }
  }, [])

  return (
    <section aria-labelledby='page-title'>
      <h1 id='page-title' tabIndex={-1}>Approvals</h1>
      <p class='help'>Queued runs (POST /api/executions) that reached a tool whose approval setting is <code>always</code>. A waiting run holds no sandbox and no concurrency slot; after your decision it starts again and replays what it already did, so nothing it called runs twice. Undecided runs end with <code>APPROVAL_EXPIRED</code>.</p>
      {error !== null && <p class='error' role='alert'>{error}</p>}
      {runs === null && error === null && <p class='muted'>Loading…</p>}
      {runs !== null && runs.length === 0 && <p class='muted' data-testid='no-approvals'>No run is waiting for a decision.</p>}
      {runs?.map((run) => <WaitingRun key={run.executionId} run={run} />)}
    </section>
  )
}

function sameIds (a: ExecutionRun[] | null, b: ExecutionRun[]): boolean {
  return a !== null && a.length === b.length && a.every((run, i) => run.executionId === b[i]?.executionId)
}

function WaitingRun ({ run }: { run: ExecutionRun }) {
  const [view, setView] = useState<WaitingView>({ pending: [], logs: [], ended: false })
  const [note, setNote] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const [reasons, setReasons] = useState<Record<string, string>>({})
  const [grantTool, setGrantTool] = useState('')
  const [grantCalls, setGrantCalls] = useState(0)

  useEffect(() => {
    const aborted = new AbortController()
    setView({ pending: [], logs: [], ended: false })
    request(`/api/executions/${encodeURIComponent(run.executionId)}/events`, { headers: { accept: 'application/x-ndjson' }, signal: aborted.signal }).then(async (res) => {
      if (res.body === null) return
      await readEvents(res.body as ReadableStream<BufferSource>, (event) => { setView((before) => applyApprovalEvent(before, event)) })
    }).catch((err: Error) => {
      if (!aborted.signal.aborted && !(err instanceof AuthError)) setNote(`The run's events could not be read: ${err.message}`)
    })
    return () => { aborted.abort() }
  }, [run.executionId])

  const decide = async (body: Record<string, unknown>): Promise<void> => {
    setBusy(true)
    setNote(null)
    try {
      await sendJson('POST', `/api/executions/${encodeURIComponent(run.executionId)}/approvals`, body)
    } catch (err) {
      if (err instanceof AuthError) return
      setNote(err instanceof ApiError && err.status === 409 ? 'Nothing is pending on this run any more (someone decided, or it ended).' : (err as Error).message)
    } finally {
      setBusy(false)
    }
  }
  const one = (call: PendingCall, approve: boolean): void => {
    const reason = reasons[call.callId]?.trim() ?? ''
    void decide({ decisions: [{ callId: call.callId, approve, ...(reason !== '' ? { reason } : {}) }] })
  }
  const all = (): void => {
    void decide(grantTool !== '' && grantCalls > 0 ? { approveAll: true, forTool: grantTool, maxCalls: grantCalls } : { approveAll: true })
  }
  const tools = [...new Set(view.pending.map((c) => c.tool))]
  const titleId = `run-${run.executionId}`

  return (
    <article class='details' aria-labelledby={titleId} data-testid='waiting-run'>
      <h2 id={titleId}>Run <code>{run.executionId}</code></h2>
      <p class='muted'>
        Submitted <time dateTime={run.submittedAt}>{new Date(run.submittedAt).toLocaleString()}</time>
        {run.expiresAt !== undefined && !view.ended && <> · expires undecided at <time dateTime={run.expiresAt} data-testid='expires-at'>{new Date(run.expiresAt).toLocaleString()}</time></>}
        {view.ended ? ' · ended' : ''}
      </p>
      {note !== null && <p class='error' role='alert'>{note}</p>}
      <h3>Pending calls</h3>
      {view.pending.length === 0
        ? <p class='muted'>{view.ended ? 'The run has ended.' : 'None pending right now (the run is resuming, or waiting for its stream).'}</p>
        : (
          <ol class='pending-calls' aria-live='polite'>
            {view.pending.map((call) => (
              <li key={call.callId} data-testid='pending-call'>
                <p><code>{call.tool}</code> <span class='muted'>call {call.position + 1} of the run ({call.callId})</span></p>
                <pre data-testid='pending-args'>{JSON.stringify(call.args, null, 2)}</pre>
                <label>Reason (optional){' '}<input type='text' value={reasons[call.callId] ?? ''} onInput={(e) => { setReasons({ ...reasons, [call.callId]: (e.target as HTMLInputElement).value }) }} /></label>
                {' '}
                <button type='button' disabled={busy} onClick={() => { one(call, true) }} aria-label={`Approve ${call.tool} (${call.callId})`}>Approve</button>
                {' '}
                <button type='button' class='secondary' disabled={busy} onClick={() => { one(call, false) }} aria-label={`Reject ${call.tool} (${call.callId})`}>Reject</button>
              </li>
            ))}
          </ol>
          )}
      {view.pending.length > 0 && (
        <div class='toolbar'>
          <button type='button' disabled={busy} onClick={all}>Approve all ({view.pending.length})</button>
          <label>and the next{' '}<input type='number' min={0} max={10000} value={grantCalls} aria-label='Further calls to approve' onInput={(e) => { setGrantCalls(Math.max(0, Number((e.target as HTMLInputElement).value) || 0)) }} /></label>
          <label>calls of{' '}
            <select value={grantTool} aria-label='Tool whose further calls are approved' onChange={(e) => { setGrantTool((e.target as HTMLSelectElement).value) }}>
              <option value=''>no tool</option>
              {tools.map((tool) => <option key={tool} value={tool}>{tool}</option>)}
            </select>
          </label>
          <span class='help'>without asking again in this run.</span>
        </div>
      )}
      <h3>Logs so far</h3>
      {view.logs.length === 0
        ? <p class='muted'>No output.</p>
        : <pre class='logs' data-testid='waiting-logs'>{view.logs.map((l) => `${l.level === 'log' ? '' : `[${l.level}] `}${l.message}`).join('\n')}</pre>}
    </article>
  )
}
