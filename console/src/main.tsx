import { render } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import { readClaims, setUnauthorizedHandler, storedToken, storeToken, type TokenClaims } from './api.ts'
import { SignIn } from './pages/sign-in.tsx'
import { Playground } from './pages/playground.tsx'
import { UsagePage } from './pages/usage.tsx'
import { RunsPage } from './pages/runs.tsx'
import { ToolsPage } from './pages/tools.tsx'
import { AdminPage } from './pages/admin.tsx'
import { AgentsPage } from './pages/agents.tsx'
import { ApprovalsPage } from './pages/approvals.tsx'
import './style.css'

const BASE = '/console/'
const PAGES = [
  { path: 'playground', label: 'Playground' },
  { path: 'usage', label: 'Usage' },
  { path: 'runs', label: 'Runs' },
  { path: 'tools', label: 'Tools' },
  { path: 'agents', label: 'Agents' },
  { path: 'approvals', label: 'Approvals', permission: 'approvals:decide' },
  { path: 'admin', label: 'Admin', permission: 'admin' }
] as const
type PagePath = typeof PAGES[number]['path']

function currentPage (): PagePath {
  const rest = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length).split('/')[0] : ''
  return (PAGES.find((p) => p.path === rest)?.path) ?? 'playground'
}

export function navigate (path: PagePath): void {
  history.pushState(null, '', BASE + path)
  dispatchEvent(new PopStateEvent('popstate'))
}

function App () {
  const [token, setToken] = useState<string | null>(storedToken())
  const [notice, setNotice] = useState<string | null>(null)
  const [page, setPage] = useState<PagePath>(currentPage())
  const mainRef = useRef<HTMLElement>(null)
  const claims: TokenClaims | null = token === null ? null : readClaims(token)
  const isAdmin = claims?.permissions.includes('admin') === true

  useEffect(() => {
    setUnauthorizedHandler((message) => {
      storeToken(null)
      setToken(null)
      setNotice(message)
    })
    const onPop = (): void => { setPage(currentPage()) }
    addEventListener('popstate', onPop)
    return () => { removeEventListener('popstate', onPop) }
  }, [])

  useEffect(() => {
    document.title = `${PAGES.find((p) => p.path === page)?.label ?? ''} · tenant-enclave console`
    // Keyboard and screen-reader users land on the new page's heading.
    mainRef.current?.querySelector<HTMLElement>('h1')?.focus()
  }, [page, token])

  if (token === null || claims === null) {
    return (
      <SignIn
        notice={token !== null && claims === null ? 'That is not a token this service issues (no tenantId claim).' : notice}
        onSignIn={(t) => { storeToken(t); setNotice(null); setToken(t) }}
      />
    )
  }

  const signOut = (): void => { storeToken(null); setToken(null); setNotice('Signed out.') }
  // A page that needs a permission is listed only for tokens that have it.
  const visible = PAGES.filter((p) => !('permission' in p) || claims.permissions.includes(p.permission))
  return (
    <>
      <a class='skip' href='#main'>Skip to content</a>
      <header class='top'>
        <span class='brand'>tenant-enclave</span>
        <nav aria-label='Console pages'>
          <ul>
            {visible.map((p) => (
              <li key={p.path}>
                <a
                  href={BASE + p.path}
                  aria-current={page === p.path ? 'page' : undefined}
                  onClick={(e) => { if (e.ctrlKey || e.metaKey || e.shiftKey) return; e.preventDefault(); navigate(p.path) }}
                >{p.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class='who' title={claims.permissions.join(', ')}>
          tenant <strong data-testid='tenant-id'>{claims.tenantId}</strong>
        </span>
        <button type='button' class='secondary' onClick={signOut}>Sign out</button>
      </header>
      <main id='main' ref={mainRef}>
        {page === 'playground' && <Playground />}
        {page === 'usage' && <UsagePage />}
        {page === 'runs' && <RunsPage />}
        {page === 'tools' && <ToolsPage />}
        {page === 'agents' && <AgentsPage />}
        {page === 'approvals' && (claims.permissions.includes('approvals:decide') ? <ApprovalsPage /> : <p role='alert'>Deciding approvals needs a token with the <code>approvals:decide</code> permission.</p>)}
        {page === 'admin' && (isAdmin ? <AdminPage /> : <p role='alert'>The Admin pages need a token with the <code>admin</code> permission.</p>)}
      </main>
    </>
  )
}

render(<App />, document.getElementById('app') as HTMLElement)
