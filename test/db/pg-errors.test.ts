// pg reports a lost or unreachable server with plain Errors; the tagging pool turns exactly
// those into DatabaseUnavailableError (a 503), and leaves the server's own errors alone.
import net from 'node:net'
import pg from 'pg'
import t from 'tap'
import { DatabaseUnavailableError, taggingPool } from '../../services/db/pg-errors.ts'
import { isDependencyFailure } from '../../services/errors/index.ts'
import { proxyFor } from '../support/tcp-proxy.ts'

async function listening (onSocket: (socket: net.Socket) => void): Promise<{ url: string, close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => { sockets.add(socket); onSocket(socket) })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  return {
    url: `postgres://u:p@127.0.0.1:${port}/db`,
    close: async () => { for (const s of sockets) s.destroy(); await new Promise((resolve) => server.close(resolve)) }
  }
}

function poolFor (t: { teardown: (fn: () => unknown) => void }, connectionString: string, connectionTimeoutMillis = 2000) {
  const pool = new pg.Pool({ connectionString, max: 2, connectionTimeoutMillis })
  pool.on('error', () => {})
  pool.on('connect', (client) => { client.on('error', () => {}) })
  t.teardown(async () => { await pool.end().catch(() => {}) })
  return taggingPool(pool)
}

async function failure (promise: Promise<unknown>): Promise<unknown> {
  try { await promise } catch (err) { return err }
  throw new Error('expected a failure')
}

t.test('connect: refused, closed during the handshake, or too slow', async (t) => {
  const refused = await listening(() => {})
  await refused.close()
  const gone = await failure(poolFor(t, refused.url).connect())
  t.type(gone, DatabaseUnavailableError, 'connection refused')
  t.ok(isDependencyFailure(gone))

  const hangUp = await listening((socket) => { socket.destroy() })
  t.teardown(hangUp.close)
  t.type(await failure(poolFor(t, hangUp.url).connect()), DatabaseUnavailableError, 'closed during the handshake (Connection terminated unexpectedly)')

  const silent = await listening(() => {})
  t.teardown(silent.close)
  const slow = await failure(poolFor(t, silent.url, 200).connect())
  t.type(slow, DatabaseUnavailableError, 'no answer within connectionTimeoutMillis')
  t.ok(isDependencyFailure(slow))
})

const { DATABASE_URL } = process.env
if (DATABASE_URL !== undefined) {
  t.test('a real server: its errors stay, a cut connection is tagged', async (t) => {
    const proxy = await proxyFor(DATABASE_URL)
    t.teardown(async () => { await proxy.down() })
    const pool = poolFor(t, proxy.urlFor(DATABASE_URL))
    const client = await pool.connect()
    t.same((await client.query('select 1 as one', [])).rows, [{ one: 1 }])
    const syntax = await failure(client.query('selec 1', []))
    t.type(syntax, pg.DatabaseError, 'a SQL error is the server\'s')
    t.notOk(isDependencyFailure(syntax), 'and no outage')

    const sleeping = failure(client.query('select pg_sleep(10)', []))
    await new Promise((resolve) => setTimeout(resolve, 200))
    await proxy.down()
    const cut = await sleeping
    t.type(cut, DatabaseUnavailableError, 'a query whose connection is cut (Connection terminated unexpectedly)')
    t.type(await failure(client.query('select 1', [])), DatabaseUnavailableError, 'the next query on that client (not queryable)')
    client.release(true)
    t.type(await failure(pool.connect()), DatabaseUnavailableError, 'a new connection while the server is away')
  })
}
