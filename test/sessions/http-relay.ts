import http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Exchange {
  method: string
  path: string
  requestBody: string
  status: number
  responseBody: string
}

export interface RelayHooks {
  /** Rewrites a request body before it goes on (an active man in the middle). */
  request?: (path: string, body: string) => string
  /** Rewrites a response body before the client sees it. */
  response?: (path: string, body: string) => string
}

/**
 * An intercepting HTTP relay on loopback, as a gateway that terminates TLS would be: it sees
 * every header and body in both directions (recorded in `seen`), and may rewrite bodies.
 */
export class HttpRelay {
  readonly exchanges: Exchange[] = []
  /** Every byte of headers and bodies that crossed the relay, both directions. */
  seen = ''
  hooks: RelayHooks
  private server: http.Server | undefined
  private readonly target: string

  constructor (target: string, hooks: RelayHooks = {}) {
    this.target = target.replace(/\/$/, '')
    this.hooks = hooks
  }

  async start (): Promise<string> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => { void this.forward(req, Buffer.concat(chunks).toString('utf8'), res) })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    this.server = server
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }

  private async forward (req: http.IncomingMessage, original: string, res: http.ServerResponse): Promise<void> {
    const path = req.url ?? '/'
    this.seen += `${req.method} ${path}\n${JSON.stringify(req.headers)}\n${original}\n`
    const body = this.hooks.request?.(path, original) ?? original
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === 'string' && !['host', 'content-length', 'connection'].includes(name)) headers[name] = value
    }
    try {
      const upstream = await fetch(this.target + path, { method: req.method, headers, ...(req.method === 'GET' ? {} : { body }) })
      const text = await upstream.text()
      this.seen += `${upstream.status}\n${JSON.stringify(Object.fromEntries(upstream.headers))}\n${text}\n`
      const answer = this.hooks.response?.(path, text) ?? text
      this.exchanges.push({ method: req.method ?? 'GET', path, requestBody: body, status: upstream.status, responseBody: answer })
      res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' })
      res.end(answer)
    } catch (err) {
      res.writeHead(502)
      res.end(String(err))
    }
  }

  async stop (): Promise<void> {
    const server = this.server
    if (server === undefined) return
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => { resolve() }))
  }
}
