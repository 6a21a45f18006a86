import { useEffect, useState } from 'preact/hooks'
import { ApiError, getJson, OUTCOME_CODES, type ExecutionRun, type ToolCallRow } from '../api.ts'
import { formatDuration } from '../format.ts'
import { TableScroll } from '../table-scroll.tsx'

const PAGE = 20
const STATUSES = ['queued', 'running', 'awaiting_approval', 'succeeded', 'failed', 'cancelled'] as const

interface Filters { status: string, code: string, from: string, to: string }
const NO_FILTERS: Filters = { status: '', code: '', from: '', to: '' }

const outcomeOf = (run: ExecutionRun): string => run.result === undefined ? '' : run.result.success ? 'OK' : run.result.error?.code ?? ''

/** A filter's drop-down: All (no filter) and each value. */
function FilterSelect ({ label, value, options, onChange }: { label: string, value: string, options: readonly string[], onChange: (e: Event) => void }) {
  return (
    <label>{label}{' '}
      <select value={value} onChange={onChange}>
        <option value=''>All</option>
        {options.map((o) => <option key={o} value={o}>{o}</option>)}
      </select>
    </label>
  )
}

export function RunsPage () {
  // The filters go to the server (GET /api/executions), so every page is of filtered runs.
  const [filters, setFilters] = useState<Filters>(NO_FILTERS)
  // Cursors of the pages seen so far with these filters: [undefined, before-of-page-2, ...]
  const [cursors, setCursors] = useState<Array<string | undefined>>([undefined])
  const [page, setPage] = useState<{ executions: ExecutionRun[], nextBefore: string | null } | null>(null)
  const [selected, setSelected] = useState<ExecutionRun | null>(null)
  const [error, setError] = useState<string | null>(null)
  const before = cursors[cursors.length - 1]

  useEffect(() => {
    setPage(null)
    setError(null)
    const query = new URLSearchParams({ limit: String(PAGE) })
    for (const [name, value] of Object.entries(filters)) if (value !== '') query.set(name, value)
    if (before !== undefined) query.set('before', before)
    getJson<{ executions: ExecutionRun[], nextBefore: string | null }>(`/api/executions?${query.toString()}`).then(setPage, (err: Error) => { setError(err.message) })
  }, [before, filters])

  const filter = (name: keyof Filters) => (e: Event): void => {
    setFilters({ ...filters, [name]: (e.target as HTMLInputElement | HTMLSelectElement).value })
    setCursors([undefined])
  }
  const shown = page?.executions ?? []
  return (
    <section aria-labelledby='page-title'>
      <h1 id='page-title' tabIndex={-1}>Runs</h1>
      <div class='toolbar'>
        <FilterSelect label='Status' value={filters.status} options={STATUSES} onChange={filter('status')} />
        <FilterSelect label='Outcome' value={filters.code} options={OUTCOME_CODES} onChange={filter('code')} />
        <label>From <input type='date' value={filters.from} onChange={filter('from')} /></label>
        <label>To <input type='date' value={filters.to} onChange={filter('to')} /></label>
        <button type='button' class='secondary' disabled={cursors.length === 1} onClick={() => { setCursors(cursors.slice(0, -1)) }}>Newer</button>
        <button type='button' class='secondary' disabled={page?.nextBefore == null} onClick={() => { setCursors([...cursors, page?.nextBefore ?? undefined]) }}>Older</button>
        <span class='help'>Page {cursors.length}, newest first. Queued runs (POST /api/executions); runs answered at once are in the audit log.</span>
      </div>
      {error !== null && <p class='error' role='alert'>{error}</p>}
      {page === null && error === null && <p class='muted'>Loading…</p>}
      {page !== null && (
        <TableScroll label='Runs'>
          <table data-testid='runs-table'>
            <caption class='sr-only'>Queued runs, newest first</caption>
            <thead><tr><th scope='col'>Submitted</th><th scope='col'>Status</th><th scope='col'>Outcome</th><th scope='col'>Duration</th><th scope='col'>Tool calls</th><th scope='col'><span class='sr-only'>Details</span></th></tr></thead>
            <tbody>
              {shown.length === 0 && <tr><td colSpan={6} class='muted'>No runs here.</td></tr>}
              {shown.map((run) => (
                <tr key={run.executionId} aria-selected={selected?.executionId === run.executionId ? 'true' : undefined}>
                  <td><time dateTime={run.submittedAt}>{new Date(run.submittedAt).toLocaleString()}</time></td>
                  <td><span class={`badge ${run.status === 'succeeded' ? 'succeeded' : run.status === 'failed' || run.status === 'cancelled' ? 'failed' : ''}`}>{run.status}</span></td>
                  <td>{outcomeOf(run)}</td>
                  <td>{run.result === undefined ? '' : formatDuration(run.result.stats.duration)}</td>
                  <td>{run.result?.stats.toolCallCount ?? ''}</td>
                  <td><button type='button' class='link' onClick={() => { setSelected(run) }} aria-label={`Details of run ${run.executionId}`}>Details</button></td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      )}
      {selected !== null && <RunDetails run={selected} onClose={() => { setSelected(null) }} />}
    </section>
  )
}

function RunDetails ({ run, onClose }: { run: ExecutionRun, onClose: () => void }) {
  const [calls, setCalls] = useState<ToolCallRow[] | null>(null)
  const [note, setNote] = useState<string | null>(null)
  useEffect(() => {
    setCalls(null)
    setNote(null)
    getJson<{ toolCalls: ToolCallRow[] }>(`/api/audit/${encodeURIComponent(run.executionId)}`).then((r) => { setCalls(r.toolCalls) }, (err: Error) => {
      setNote(err instanceof ApiError && err.status === 404 ? 'Tool-call details are not available for this run on this server.' : err.message)
    })
  }, [run.executionId])
  const total = Math.max(1, ...(calls ?? []).map((c) => c.durationMs ?? 0))
  return (
    <section class='details' aria-labelledby='details-title' data-testid='run-details'>
      <h2 id='details-title'>Run <code>{run.executionId}</code></h2>
      <button type='button' class='secondary' onClick={onClose}>Close</button>
      <dl class='stats'>
        <dt>Status</dt><dd>{run.status}{outcomeOf(run) !== '' && outcomeOf(run) !== 'OK' ? ` (${outcomeOf(run)})` : ''}</dd>
        <dt>Duration</dt><dd>{run.result === undefined ? '' : formatDuration(run.result.stats.duration)}</dd>
        <dt>Tool calls</dt><dd>{run.result?.stats.toolCallCount ?? ''}</dd>
      </dl>
      <h3>Tool calls</h3>
      {note !== null && <p class='muted'>{note}</p>}
      {calls !== null && calls.length === 0 && <p class='muted'>This run called no tools.</p>}
      {calls !== null && calls.length > 0 && (
        <ol class='timeline' data-testid='timeline'>
          {calls.map((c, i) => {
            const outcome = c.outcome ?? c.code ?? ''
            return (
              <li key={i}>
                <span class='call-name'><code>{c.tool}</code></span>
                <span class={`badge ${outcome === 'OK' ? 'succeeded' : 'failed'}`}>{outcome}</span>
                {/* The bar's width is set through CSSOM (Preact writes style.width), which the
                    CSP's style-src does not govern; it stays inside its own track. */}
                <span class='track' aria-hidden='true'><span class='bar' style={{ width: `${Math.max(2, ((c.durationMs ?? 0) / total) * 100)}%` }} /></span>
                <span class='duration'>{formatDuration(c.durationMs)}</span>
                <span class='status'>{c.upstreamStatus != null ? `HTTP ${c.upstreamStatus}` : ''}</span>
              </li>
            )
          })}
        </ol>
      )}
    </section>
  )
}
