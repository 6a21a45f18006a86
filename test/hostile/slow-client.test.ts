import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { buildApp, createTenant } from '../helper.ts'

// The HTTP edge against a slowloris client (issue 10 item 7). In a file of its own, apart from
// edge.test.ts: it waits on the server's clock, so it gets its own process and its own share of
// tap's per-file timeout on a loaded machine rather than what eight app builds before it left.

t.test('a client that sends its headers slowly is cut off', async (t) => {
  const app = await buildApp(t, { HTTP_HEADERS_TIMEOUT_MS: '500', HTTP_REQUEST_TIMEOUT_MS: '1000' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  // Wall-clock bound of this test's own waits. The server cuts the client off within about a
  // second (500 ms, checked every 500 ms); on a machine at load 8 and more this process gets a
  // fraction of a core and its timers run seconds late, so the bound is a minute. It only
  // decides when to give up on a server that never cuts off, never what passes.
  const deadline = performance.now() + 60_000
  const socket = connect(port, '127.0.0.1')
  // Registered before any assertion: whatever fails, the socket is gone before the app closes,
  // so the teardown never waits on a connection the test left open.
  t.teardown(() => { socket.destroy() })
  let received = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => { received += chunk })
  socket.on('error', () => {}) // a reset after the 408 is the server's right
  const closed = new Promise<void>((resolve) => socket.on('close', () => { resolve() }))
  let open = true
  void closed.then(() => { open = false })
  socket.write('GET /health HTTP/1.1\r\nHost: localhost\r\n')
  // A slowloris client: one header line every 100 ms, never the blank line that ends them.
  let sent = 0
  // eslint-disable-next-line no-unmodified-loop-condition -- `open` is cleared by the socket's close
  while (open && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    if (open && socket.writable) socket.write(`X-Slow-${sent++}: 1\r\n`)
  }
  t.notOk(open, `the server closed the connection (after ${sent} header lines)`)
  socket.destroy()
  await closed
  t.match(received, /^HTTP\/1\.1 408 /, 'with 408 Request Timeout')

  // The timeouts bound receiving the request, not answering it: a run longer than both still
  // gets its result over the same server. The signal only keeps a hung answer from running into
  // tap's file timeout; the run itself is bounded by the tier's timeout.
  const tenant = await createTenant(app, 'slow-run', { tier: 'enterprise' })
  const res = await fetch(`http://127.0.0.1:${port}/api/execute`, {
    method: 'POST',
    headers: { ...tenant.headers, 'content-type': 'application/json' },
    body: JSON.stringify({ code: 'const end = Date.now() + 1500; while (Date.now() < end) {} return "done"' }),
    signal: AbortSignal.timeout(Math.round(Math.max(10_000, deadline - performance.now())))
  })
  t.equal(res.status, 200)
  t.match(await res.json(), { success: true, value: 'done' })
})
