import { useEffect, useState } from 'preact/hooks'
import { ApiError, getJson, type AuditEntry, type ToolCallRow } from '../api.ts'
import { formatDuration } from '../format.ts'
import { TableScroll } from '../table-scroll.tsx'

const PAGE = 20
type Outcome = 'all' | 'succeeded' | 'failed' | 'refused'

function outcomeOf (e: AuditEntry): Exclude<Outcome, 'all'> {
  if (e.action === 'execution_refused') return 'refused'
  return e.success ? 'succeeded' : 'failed'
}

export function RunsPage () {
  // Cursors of the pages seen so far: [undefined, before-of-page-2, ...]
  const [cursors, setCursors] = useState<Array<string | undefined>>([undefined])
  const [page, setPage] = useState<{ entries: AuditEntry[], nextBefore: string | null } | null>(null)
  const [outcome, setOutcome] = useState<Outcome>('all')
  const [selected, setSelected] = useState<AuditEntry | null>(null)
  const [error, setError] = useState<string | null>(null)
  const before = cursors[cursors.length - 1]

  useEffect(() => {
    setPage(null)
    const query = new URLSearchParams({ limit: String(PAGE) })
    if (before !== undefined) query.set('before', before)
    getJson<{ entries: AuditEntry[], nextBefore: string | null }>(`/api/audit?${query.toString()}`).then(setPage, (err: Error) => { setError(err.message) })
  }, [before])

  const shown = page?.entries.filter((e) => outcome === 'all' || outcomeOf(e) === outcome) ?? []
  return (
    <section aria-labelledby='page-title'>
      <h1 id='page-title' tabIndex={-1}>Runs</h1>
      <div class='toolbar'>
        <label>Outcome{' '}
          <select value={outcome} onChange={(e) => { setOutcome((e.target as HTMLSelectElement).value as Outcome) }}>
            <option value='all'>All</option>
            <option value='succeeded'>Succeeded</option>
            <option value='failed'>Failed</option>
            <option value='refused'>Refused</option>
          </select>
        </label>
        <button type='button' class='secondary' disabled={cursors.length === 1} onClick={() => { setCursors(cursors.slice(0, -1)) }}>Newer</button>
        <button type='button' class='secondary' disabled={page?.nextBefore == null} onClick={() => { setCursors([...cursors, page?.nextBefore ?? undefined]) }}>Older</button>
        <span class='help'>Page {cursors.length}, newest first; the filter applies to this page.</span>
      </div>
      {error !== null && <p class='error' role='alert'>{error}</p>}
      {page === null && error === null && <p class='muted'>Loading…</p>}
      {page !== null && (
        <TableScroll label='Runs'>
          <table data-testid='runs-table'>
            <caption class='sr-only'>Audit entries, newest first</caption>
            <thead><tr><th scope='col'>When</th><th scope='col'>Outcome</th><th scope='col'>Error</th><th scope='col'>Duration</th><th scope='col'>Tool calls</th><th scope='col'>User</th><th scope='col'><span class='sr-only'>Details</span></th></tr></thead>
            <tbody>
              {shown.length === 0 && <tr><td colSpan={7} class='muted'>No runs here.</td></tr>}
              {shown.map((e) => (
                <tr key={e.id} aria-selected={selected?.id === e.id ? 'true' : undefined}>
                  <td><time dateTime={e.createdAt}>{new Date(e.createdAt).toLocaleString()}</time></td>
                  <td><span class={`badge ${outcomeOf(e)}`}>{outcomeOf(e)}</span></td>
                  <td>{e.errorCode ?? ''}</td>
                  <td>{e.durationMs === null ? '' : formatDuration(e.durationMs)}</td>
                  <td>{e.toolCalls}</td>
                  <td>{e.userId}</td>
                  <td><button type='button' class='link' onClick={() => { setSelected(e) }} aria-label={`Details of run ${e.executionId}`}>Details</button></td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      )}
      {selected !== null && <RunDetails entry={selected} onClose={() => { setSelected(null) }} />}
    </section>
  )
}

function RunDetails ({ entry, onClose }: { entry: AuditEntry, onClose: () => void }) {
  const [calls, setCalls] = useState<ToolCallRow[] | null>(null)
  const [note, setNote] = useState<string | null>(null)
  useEffect(() => {
    setCalls(null)
    setNote(null)
    getJson<{ toolCalls: ToolCallRow[] }>(`/api/audit/${encodeURIComponent(entry.executionId)}`).then((r) => { setCalls(r.toolCalls) }, (err: Error) => {
      setNote(err instanceof ApiError && err.status === 404 ? 'Tool-call details are not available for this run on this server.' : err.message)
    })
  }, [entry.executionId])
  const total = Math.max(1, ...(calls ?? []).map((c) => c.durationMs ?? 0))
  return (
    <section class='details' aria-labelledby='details-title' data-testid='run-details'>
      <h2 id='details-title'>Run <code>{entry.executionId}</code></h2>
      <button type='button' class='secondary' onClick={onClose}>Close</button>
      <dl class='stats'>
        <dt>Outcome</dt><dd>{outcomeOf(entry)}{entry.errorCode !== null ? ` (${entry.errorCode})` : ''}</dd>
        <dt>Duration</dt><dd>{formatDuration(entry.durationMs)}</dd>
        <dt>Tool calls</dt><dd>{entry.toolCalls}</dd>
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
