import net from 'node:net'

/** Where a pg client connected to and the key its server (or pooler) gave it at login. */
export interface CancelTarget {
  host: string
  port: number
  processID: number
  secretKey: number
}

// Protocol constant for CancelRequest (PostgreSQL frontend/backend protocol, "CancelRequest").
const CANCEL_REQUEST_CODE = 80877102

/**
 * Cancels the statement a connection is running with the protocol's CancelRequest: a fresh
 * connection to the same address sends the key the connection was given at login. Unlike
 * pg_cancel_backend(pid), this also works behind PgBouncer, whose key is its own (the "pid" in
 * it names no PostgreSQL backend): the pooler looks the key up and passes the cancel to the
 * server connection that client holds at that moment, and drops it if it holds none.
 * Resolves once the far end closed the connection (PostgreSQL closes it after it signalled the
 * backend), or on any failure: a cancel is best effort, the statement_timeout still holds.
 */
export async function sendCancelRequest (target: CancelTarget, timeoutMs = 3000): Promise<void> {
  const packet = Buffer.alloc(16)
  packet.writeInt32BE(16, 0)
  packet.writeInt32BE(CANCEL_REQUEST_CODE, 4)
  packet.writeInt32BE(target.processID | 0, 8)
  packet.writeInt32BE(target.secretKey | 0, 12)
  await new Promise<void>((resolve) => {
    const socket = target.host.startsWith('/')
      ? net.connect(`${target.host}/.s.PGSQL.${target.port}`)
      : net.connect(target.port, target.host)
    socket.setTimeout(timeoutMs, () => { socket.destroy() })
    // Written, not ended: the far end closes once it has acted. PgBouncer 1.18 exits (a FATAL
    // "bad client state") when a cancelling client half-closes before the pooler has passed
    // the cancel on, so this side only ever closes on the timeout.
    socket.once('connect', () => { socket.write(packet) })
    socket.once('error', () => { socket.destroy() })
    socket.once('close', () => { resolve() })
    socket.resume()
  })
}
