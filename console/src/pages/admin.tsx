import { useEffect, useState } from 'preact/hooks'
import { ApiError, getJson, sendJson, type PerUserKey, type Quotas, type Tenant, type TenantPage } from '../api.ts'
import { TableScroll } from '../table-scroll.tsx'

const PER_USER_KEYS: PerUserKey[] = ['executionsPerDay', 'toolCallsPerDay', 'cpuSecondsPerDay']
const QUOTA_KEYS: Array<keyof Quotas> = ['maxExecutionsPerDay', 'maxExecutionDurationMs', 'maxConcurrentExecutions', 'maxToolCallsPerExecution', 'maxToolCallsPerDay', 'maxMemoryMB', 'maxCodeSizeKB', 'maxOutputSizeKB', 'maxCpuSecondsPerDay', 'storageBytes', 'storageDocuments', 'maxWaitingRuns', 'maxJournalBytes']

export function AdminPage () {
  const [tenantId, setTenantId] = useState('')
  const [tenant, setTenant] = useState<Tenant | null>(null)
  const [message, setMessage] = useState<{ kind: 'ok' | 'error', text: string } | null>(null)
  // Counts saves, so the list shows a tenant's new tier or name.
  const [saves, setSaves] = useState(0)

  const load = async (id: string): Promise<void> => {
    setMessage(null)
    try {
      setTenant(await getJson<Tenant>(`/admin/tenants/${encodeURIComponent(id.trim())}`))
    } catch (err) {
      setTenant(null)
      setMessage({ kind: 'error', text: (err as Error).message })
    }
  }

  return (
    <section aria-labelledby='page-title'>
      <h1 id='page-title' tabIndex={-1}>Admin</h1>
      <h2>Tenants</h2>
      <TenantList openId={tenant?.tenantId ?? null} version={saves} onOpen={(id) => { setTenantId(id); void load(id) }} />
      <form class='toolbar' onSubmit={(e) => { e.preventDefault(); void load(tenantId) }}>
        <label>Tenant id{' '}
          <input name='tenantId' value={tenantId} required pattern='[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}' onInput={(e) => { setTenantId((e.target as HTMLInputElement).value) }} />
        </label>
        <button type='submit'>Open</button>
      </form>
      {message !== null && <p class={message.kind === 'ok' ? 'notice' : 'error'} role={message.kind === 'ok' ? 'status' : 'alert'} data-testid='admin-message'>{message.text}</p>}
      {tenant !== null && <TenantEditor key={tenant.tenantId} tenant={tenant} onSaved={(t, text) => { setTenant(t); setSaves(saves + 1); setMessage({ kind: 'ok', text }) }} onError={(text) => { setMessage({ kind: 'error', text }) }} />}
      {tenant !== null && <ToolSettings tenantId={tenant.tenantId} onMessage={setMessage} />}
      <PlatformTools />
    </section>
  )
}

const LIST_PAGE = 20

/** Registered tenants, searched by id or name on the server, a page at a time; a click opens one. */
function TenantList ({ openId, version, onOpen }: { openId: string | null, version: number, onOpen: (tenantId: string) => void }) {
  const [search, setSearch] = useState('')
  const [query, setQuery] = useState('')
  // Cursors of the pages seen so far: [undefined, after-of-page-2, ...]
  const [cursors, setCursors] = useState<Array<string | undefined>>([undefined])
  const [page, setPage] = useState<TenantPage | null>(null)
  const [error, setError] = useState<string | null>(null)
  const after = cursors[cursors.length - 1]

  // The search is sent a moment after the last keystroke, not on every one.
  useEffect(() => {
    const timer = setTimeout(() => { setQuery(search.trim()); setCursors([undefined]) }, 250)
    return () => { clearTimeout(timer) }
  }, [search])

  useEffect(() => {
    let current = true
    setError(null)
    const params = new URLSearchParams({ limit: String(LIST_PAGE) })
    if (query !== '') params.set('search', query)
    if (after !== undefined) params.set('after', after)
    getJson<TenantPage>(`/admin/tenants?${params.toString()}`).then((r) => { if (current) setPage(r) }, (err: Error) => {
      if (current) setError(err instanceof ApiError && err.status === 404 ? 'This server cannot list tenants (GET /admin/tenants).' : err.message)
    })
    return () => { current = false }
  }, [query, after, version])

  return (
    <div data-testid='tenant-list'>
      <div class='toolbar'>
        <label>Search tenants{' '}
          <input type='search' name='search' value={search} maxLength={200} placeholder='id or name' onInput={(e) => { setSearch((e.target as HTMLInputElement).value) }} />
        </label>
        <button type='button' class='secondary' disabled={cursors.length === 1} onClick={() => { setCursors(cursors.slice(0, -1)) }}>Previous</button>
        <button type='button' class='secondary' disabled={page?.nextAfter == null} onClick={() => { setCursors([...cursors, page?.nextAfter ?? undefined]) }}>Next</button>
        <span class='help' role='status'>{page === null ? 'Loading…' : `Page ${cursors.length}: ${page.tenants.length} tenant${page.tenants.length === 1 ? '' : 's'}${query === '' ? '' : ` matching “${query}”`}`}</span>
      </div>
      {error !== null && <p class='error' role='alert'>{error}</p>}
      {page !== null && (
        <TableScroll label='Tenants'>
          <table data-testid='tenant-table'>
            <caption class='sr-only'>Registered tenants, alphabetical by id</caption>
            <thead><tr><th scope='col'>Tenant</th><th scope='col'>Name</th><th scope='col'>Tier</th><th scope='col'>Registered</th></tr></thead>
            <tbody>
              {page.tenants.length === 0 && <tr><td colSpan={4} class='muted'>No tenants{query === '' ? '' : ' match'}.</td></tr>}
              {page.tenants.map((x) => (
                <tr key={x.tenantId} aria-selected={openId === x.tenantId ? 'true' : undefined}>
                  <th scope='row'><button type='button' class='link' onClick={() => { onOpen(x.tenantId) }} aria-label={`Open tenant ${x.tenantId}`}>{x.tenantId}</button></th>
                  <td>{x.name ?? ''}</td>
                  <td>{x.tier}</td>
                  <td><time dateTime={x.createdAt}>{new Date(x.createdAt).toLocaleDateString()}</time></td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      )}
    </div>
  )
}

function TenantEditor ({ tenant, onSaved, onError }: { tenant: Tenant, onSaved: (t: Tenant, text: string) => void, onError: (text: string) => void }) {
  const [tier, setTier] = useState(tenant.tier)
  const [name, setName] = useState(tenant.name ?? '')
  const [overrides, setOverrides] = useState<Record<string, string>>(Object.fromEntries(Object.entries(tenant.quotaOverrides).map(([k, v]) => [k, String(v)])))
  const [perUserText, setPerUser] = useState<Record<string, string>>(Object.fromEntries(Object.entries(tenant.perUser ?? {}).map(([k, v]) => [k, String(v)])))
  const save = async (e: Event): Promise<void> => {
    e.preventDefault()
    const numbers = (fields: Record<string, string>): Record<string, number> => Object.fromEntries(Object.entries(fields).filter(([, v]) => v.trim() !== '').map(([k, v]) => [k, Number(v)]))
    const quotaOverrides = numbers(overrides)
    // A PUT replaces the per-user limits too: the form sends the ones it shows.
    const perUser = numbers(perUserText)
    try {
      const saved = await sendJson<Tenant>('PUT', `/admin/tenants/${encodeURIComponent(tenant.tenantId)}`, { tier, name: name.trim() === '' ? null : name.trim(), quotaOverrides, perUser })
      onSaved(saved, `Saved ${saved.tenantId}: ${saved.tier} tier.`)
    } catch (err) {
      onError(err instanceof ApiError ? `${err.status}: ${err.message}` : (err as Error).message)
    }
  }
  return (
    <form class='card' onSubmit={(e) => { void save(e) }} aria-labelledby='tenant-title' data-testid='tenant-editor'>
      <h3 id='tenant-title'>{tenant.tenantId} {tenant.registered ? '' : '(no row yet: free tier)'}</h3>
      <div class='fields'>
        <label>Tier{' '}
          <select name='tier' value={tier} onChange={(e) => { setTier((e.target as HTMLSelectElement).value as Tenant['tier']) }}>
            <option value='free'>free</option>
            <option value='starter'>starter</option>
            <option value='enterprise'>enterprise</option>
          </select>
        </label>
        <label>Name{' '}<input name='name' value={name} maxLength={200} onInput={(e) => { setName((e.target as HTMLInputElement).value) }} /></label>
      </div>
      <fieldset>
        <legend>Quota overrides (empty: the tier's value)</legend>
        <div class='fields'>
          {QUOTA_KEYS.map((k) => (
            <label key={k}>{k}{' '}
              <input type='number' min={0} step={1} name={k} placeholder={String(tenant.quotas[k])} value={overrides[k] ?? ''} onInput={(e) => { setOverrides({ ...overrides, [k]: (e.target as HTMLInputElement).value }) }} />
            </label>
          ))}
        </div>
      </fieldset>
      <fieldset>
        <legend>Limits for each user, per day (empty: none)</legend>
        <div class='fields'>
          {PER_USER_KEYS.map((k) => (
            <label key={k}>{k}{' '}
              <input type='number' min={0} step={1} name={`perUser.${k}`} value={perUserText[k] ?? ''} onInput={(e) => { setPerUser({ ...perUserText, [k]: (e.target as HTMLInputElement).value }) }} />
            </label>
          ))}
        </div>
      </fieldset>
      <button type='submit'>Save tenant</button>
    </form>
  )
}

function ToolSettings ({ tenantId, onMessage }: { tenantId: string, onMessage: (m: { kind: 'ok' | 'error', text: string }) => void }) {
  const [tool, setTool] = useState('data:query')
  const [enabled, setEnabled] = useState(true)
  const [calls, setCalls] = useState('')
  const [windowMs, setWindowMs] = useState('60000')
  const path = `/admin/tenants/${encodeURIComponent(tenantId)}/tools/${encodeURIComponent(tool.trim())}`
  const report = (err: unknown): void => { onMessage({ kind: 'error', text: err instanceof ApiError ? `${err.status}: ${err.message}` : (err as Error).message }) }
  const save = async (e: Event): Promise<void> => {
    e.preventDefault()
    try {
      await sendJson('PUT', path, { enabled, rateLimit: calls.trim() === '' ? null : { calls: Number(calls), windowMs: Number(windowMs) } })
      onMessage({ kind: 'ok', text: `${tool} is ${enabled ? 'enabled' : 'disabled'} for ${tenantId}.` })
    } catch (err) { report(err) }
  }
  const reset = async (): Promise<void> => {
    try {
      await sendJson('DELETE', path, undefined)
      onMessage({ kind: 'ok', text: `${tenantId} uses the default setting for ${tool}.` })
    } catch (err) { report(err) }
  }
  return (
    <form class='card' onSubmit={(e) => { void save(e) }} aria-labelledby='tool-settings-title'>
      <h3 id='tool-settings-title'>Tool settings for {tenantId}</h3>
      <div class='fields'>
        <label>Tool{' '}<input name='tool' value={tool} required onInput={(e) => { setTool((e.target as HTMLInputElement).value) }} /></label>
        <label><input type='checkbox' checked={enabled} onChange={(e) => { setEnabled((e.target as HTMLInputElement).checked) }} /> Enabled</label>
        <label>Calls per window{' '}<input type='number' min={1} value={calls} placeholder='no limit' onInput={(e) => { setCalls((e.target as HTMLInputElement).value) }} /></label>
        <label>Window (ms){' '}<input type='number' min={1} value={windowMs} onInput={(e) => { setWindowMs((e.target as HTMLInputElement).value) }} /></label>
      </div>
      <button type='submit'>Save setting</button>{' '}
      <button type='button' class='secondary' onClick={() => { void reset() }}>Remove setting</button>
    </form>
  )
}

interface PlatformTool { name: string, description: string, http?: { method: string, url: string }, defaultEnabled?: boolean }

function PlatformTools () {
  const [tools, setTools] = useState<PlatformTool[] | null>(null)
  const [note, setNote] = useState<string | null>(null)
  useEffect(() => {
    getJson<PlatformTool[] | { tools: PlatformTool[] }>('/admin/tools').then((r) => { setTools(Array.isArray(r) ? r : r.tools) }, (err: Error) => {
      setNote(err instanceof ApiError && err.status === 404 ? 'This server has no platform tools (GET /admin/tools).' : err.message)
    })
  }, [])
  return (
    <section aria-labelledby='platform-title'>
      <h2 id='platform-title'>Platform tools</h2>
      {note !== null && <p class='muted'>{note}</p>}
      {tools !== null && tools.length === 0 && <p class='muted'>None registered.</p>}
      {tools !== null && tools.length > 0 && (
        <TableScroll label='Platform tools'>
          <table>
            <thead><tr><th scope='col'>Tool</th><th scope='col'>Description</th><th scope='col'>Upstream</th><th scope='col'>Default</th></tr></thead>
            <tbody>{tools.map((t) => <tr key={t.name}><th scope='row'><code>{t.name}</code></th><td>{t.description}</td><td>{t.http === undefined ? '' : `${t.http.method} ${t.http.url}`}</td><td>{t.defaultEnabled === true ? 'enabled' : 'disabled'}</td></tr>)}</tbody>
          </table>
        </TableScroll>
      )}
    </section>
  )
}
