import { useEffect, useState } from 'preact/hooks'
import { getJson, getOptionalText, type SandboxModule, type Tool } from '../api.ts'
import { TableScroll } from '../table-scroll.tsx'

export function ToolsPage () {
  const [tools, setTools] = useState<Tool[] | null>(null)
  const [dts, setDts] = useState<string | null | undefined>(undefined)
  const [error, setError] = useState<string | null>(null)
  const [modules, setModules] = useState<SandboxModule[] | null>(null)
  useEffect(() => {
    getJson<{ tools: Tool[] }>('/api/tools').then((r) => { setTools(r.tools) }, (err: Error) => { setError(err.message) })
    getOptionalText('/api/tools.d.ts').then(setDts, () => { setDts(null) })
    getJson<{ modules: SandboxModule[] }>('/api/modules').then((r) => { setModules(r.modules) }, () => { setModules([]) })
  }, [])
  return (
    <section aria-labelledby='page-title'>
      <h1 id='page-title' tabIndex={-1}>Tools</h1>
      {error !== null && <p class='error' role='alert'>{error}</p>}
      {tools !== null && (
        <TableScroll label='Tools'>
          <table data-testid='tools-table'>
            <caption class='sr-only'>Tools this token can see</caption>
            <thead><tr><th scope='col'>Tool</th><th scope='col'>Description</th><th scope='col'>Permitted</th><th scope='col'>Enabled</th><th scope='col'>Rate limit</th><th scope='col'>Arguments</th></tr></thead>
            <tbody>
              {tools.map((t) => (
                <tr key={t.name}>
                  <th scope='row'><code>{t.name}</code></th>
                  <td>{t.description}</td>
                  <td>{t.permitted ? 'yes' : <span title={`the token lacks tool:${t.name}`}>no</span>}</td>
                  <td>{t.enabled ? 'yes' : 'no'}</td>
                  <td>{t.rateLimit === null ? '–' : `${t.rateLimit.calls} per ${t.rateLimit.windowMs / 1000} s`}</td>
                  <td><details><summary>Schema</summary><pre>{JSON.stringify(t.argsSchema, null, 2)}</pre></details></td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      )}
      <h2>Modules</h2>
      {modules === null && <p class='muted'>Loading…</p>}
      {modules !== null && modules.length === 0 && <p class='muted'>Scripts on this server import no modules.</p>}
      {modules !== null && modules.length > 0 && (
        <TableScroll label='Modules'>
          <table data-testid='modules-table'>
            <caption class='sr-only'>npm libraries scripts may import, as in <code>import {'{ z }'} from 'zod'</code></caption>
            <thead><tr><th scope='col'>Module</th><th scope='col'>Version</th><th scope='col'>Description</th></tr></thead>
            <tbody>
              {modules.map((m) => (
                <tr key={m.name}>
                  <th scope='row'><code>{m.name}</code></th>
                  <td>{m.version}</td>
                  <td>{m.description}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableScroll>
      )}
      <p class='muted'>Their TypeScript declarations: <code>/api/modules.d.ts</code>.</p>
      <h2>TypeScript declarations</h2>
      {dts === undefined && <p class='muted'>Loading…</p>}
      {dts === null && <p class='muted'>This server does not publish <code>/api/tools.d.ts</code>.</p>}
      {typeof dts === 'string' && <pre class='dts' data-testid='dts' tabIndex={0}>{dts}</pre>}
    </section>
  )
}
