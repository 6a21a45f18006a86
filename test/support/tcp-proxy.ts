import net from 'node:net'

/**
 * A loopback TCP proxy in front of a real PostgreSQL or Redis, so a test can take the service
 * away from one app (cut every connection and refuse new ones) and bring it back, without
 * stopping the server that other test files share.
 */
export class TcpProxy {
  private server: net.Server | undefined
  private readonly sockets = new Set<net.Socket>()
  port = 0

  private readonly targetHost: string
  private readonly targetPort: number

  constructor (targetHost: string, targetPort: number) {
    this.targetHost = targetHost
    this.targetPort = targetPort
  }

  /** Starts (or restarts, on the same port) forwarding. */
  async up (): Promise<void> {
    if (this.server !== undefined) return
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, this.targetHost)
      for (const socket of [client, upstream]) {
        this.sockets.add(socket)
        socket.on('close', () => this.sockets.delete(socket))
        socket.on('error', () => { client.destroy(); upstream.destroy() })
      }
      client.pipe(upstream).pipe(client)
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.port, '127.0.0.1', () => { resolve() })
    })
    this.port = (server.address() as net.AddressInfo).port
    this.server = server
  }

  /** Drops every connection and stops listening: clients see the service as gone. */
  async down (): Promise<void> {
    const server = this.server
    this.server = undefined
    for (const socket of this.sockets) socket.destroy()
    this.sockets.clear()
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => { resolve() }))
  }

  /** `url` with its host and port replaced by the proxy's. */
  urlFor (url: string): string {
    const parsed = new URL(url)
    parsed.hostname = '127.0.0.1'
    parsed.port = String(this.port)
    return parsed.toString()
  }
}

export async function proxyFor (url: string): Promise<TcpProxy> {
  const parsed = new URL(url)
  const proxy = new TcpProxy(parsed.hostname, Number(parsed.port))
  await proxy.up()
  return proxy
}
