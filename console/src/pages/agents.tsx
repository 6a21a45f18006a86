import { useState } from 'preact/hooks'
import { storedToken } from '../api.ts'

/** The agent host configuration for /mcp, for the token this console holds. */
export function mcpConfig (url: string, token: string): string {
  return JSON.stringify({ mcpServers: { 'tenant-enclave': { url, headers: { Authorization: `Bearer ${token}` } } } }, null, 2)
}

export function AgentsPage () {
  const [showToken, setShowToken] = useState(false)
  const [copied, setCopied] = useState<string | null>(null)
  const url = `${location.origin}/mcp`
  const token = storedToken() ?? '<token>'
  const snippet = mcpConfig(url, showToken ? token : '<your token>')
  const copy = (text: string, what: string): void => {
    navigator.clipboard.writeText(text).then(() => { setCopied(`${what} copied`) }, () => { setCopied('Copying is not allowed here: select the text instead') })
  }
  return (
    <section aria-labelledby='page-title'>
      <h1 id='page-title' tabIndex={-1}>Agents</h1>
      <p>
        Any MCP agent host can use this service in code mode: the model searches the tools this token
        may call, reads their TypeScript declarations, and runs one script that calls them, under the
        same quotas and audit as the Playground.
      </p>
      <h2>MCP server URL</h2>
      <p><code data-testid='mcp-url'>{url}</code> <button type='button' class='secondary' onClick={() => { copy(url, 'URL') }}>Copy URL</button></p>
      <h2>Agent host configuration</h2>
      <p>Add this to the host's MCP servers (Streamable HTTP, bearer token):</p>
      <pre class='dts' data-testid='mcp-snippet' tabIndex={0}>{snippet}</pre>
      <p>
        <label><input type='checkbox' checked={showToken} onChange={(e) => { setShowToken((e.target as HTMLInputElement).checked) }} /> Include this console's token</label>{' '}
        <button type='button' class='secondary' onClick={() => { copy(mcpConfig(url, token), 'Configuration with token') }}>Copy with token</button>
      </p>
      {copied !== null && <p class='muted' role='status'>{copied}</p>}
      <p class='muted'>
        Its tools: <code>search_tools</code>, <code>describe_tools</code>, <code>check_script</code> (read-only)
        and <code>execute_script</code>. The token's permissions decide which platform tools a script may call.
      </p>
    </section>
  )
}
