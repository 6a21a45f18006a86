// The fetch a remote MCP server's SDK client is given (services/tools/mcp-upstream-fetch.ts):
// what it sends, and every way an answer comes back, on a real server on loopback.
import t from 'tap'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Agent } from 'undici'
import { upstreamFetch, type UpstreamRequestScope } from '../../services/tools/mcp-upstream-fetch.ts'
import { freePort } from '../support/free-port.ts'

class TooLarge extends Error { override name = 'TooLarge' }

const seen: Array<{ url: string, headers: IncomingHttpHeaders, body: string }> = []
const server = createServer((req, res) => {
  let body = ''
  req.on('data', (chunk: Buffer) => { body += chunk.toString() })
  req.on('end', () => {
    seen.push({ url: req.url ?? '', headers: req.headers, body })
    switch (req.url) {
      case '/json': res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 's1' }).end('{"jsonrpc":"2.0","id":1,"result":{}}'); break
      case '/declared-big': res.writeHead(200, { 'content-type': 'application/json', 'content-length': '5000' }).end('x'.repeat(5000)); break
      case '/chunked-big': res.writeHead(200, { 'content-type': 'application/json' }); res.write('x'.repeat(600)); res.end('x'.repeat(600)); break
      case '/sse': res.writeHead(200, { 'content-type': 'text/event-stream' }); res.write('event: message\ndata: {"a":1}\n\n'); res.end('event: message\ndata: {"b":2}\n\n'); break
      case '/sse-big': res.writeHead(200, { 'content-type': 'text/event-stream' }); res.write(`data: ${'y'.repeat(600)}\n\n`); res.end(`data: ${'y'.repeat(600)}\n\n`); break
      case '/redirect': res.writeHead(302, { location: '/json' }).end(); break
      case '/accepted': res.writeHead(202).end(); break
      default: res.writeHead(404).end()
    }
  })
})
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
const agent = new Agent()
t.teardown(async () => { await agent.close(); server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)) })

let scope: UpstreamRequestScope | undefined
const fetchFor = upstreamFetch(agent, { 'X-Api-Key': 'k1' }, () => scope)
const post = async (path: string): Promise<Response> => await fetchFor(`${origin}${path}`, { method: 'POST', headers: new Headers({ 'content-type': 'application/json', authorization: 'Bearer from-the-sdk' }), body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' })
const inScope = (assertion: string | Promise<string>): void => { scope = { assertion, maxBytes: 1024, tooLarge: () => new TooLarge('over 1 KB') } }

t.test('a request carries the call\'s assertion (awaited where it is written), the static headers and the body', async (t) => {
  inScope(new Promise((resolve) => setTimeout(() => { resolve('signed-later') }, 20)))
  const res = await post('/json')
  t.equal(res.status, 200)
  t.equal(res.headers.get('mcp-session-id'), 's1')
  t.same(await res.json(), { jsonrpc: '2.0', id: 1, result: {} })
  const request = seen.at(-1)
  t.match(request?.headers, { authorization: 'Bearer signed-later', 'x-api-key': 'k1', 'user-agent': 'tenant-enclave', 'content-type': 'application/json' })
  t.equal(request?.headers['accept-encoding'], undefined, 'no compression is asked for')
  t.equal(request?.body, '{"jsonrpc":"2.0","id":1,"method":"ping"}')
})

t.test('the byte limit holds whether the length is declared, chunked or streamed', async (t) => {
  inScope('a')
  await t.rejects(post('/declared-big'), { name: 'TooLarge', message: 'over 1 KB' }, 'a declared length over the limit')
  await t.rejects(post('/chunked-big'), { name: 'TooLarge', message: 'over 1 KB' }, 'a chunked body that grows past it')
  const streamed = await post('/sse-big')
  await t.rejects(streamed.text(), { name: 'TooLarge', message: 'over 1 KB' }, 'an event stream that grows past it')
  const small = await post('/sse')
  t.equal(small.headers.get('content-type'), 'text/event-stream')
  t.equal(await small.text(), 'event: message\ndata: {"a":1}\n\nevent: message\ndata: {"b":2}\n\n', 'a small stream comes through whole')
  t.equal((await post('/json')).status, 200, 'the pool still serves after bodies were dropped')
})

t.test('no redirect is followed; statuses without a body come through', async (t) => {
  inScope('a')
  const before = seen.length
  const redirected = await post('/redirect')
  t.equal(redirected.status, 302)
  t.equal(redirected.headers.get('location'), '/json')
  t.equal(seen.length, before + 1, 'the target was not asked')
  t.equal((await post('/accepted')).status, 202)
})

t.test('no call, or a GET (the standing stream), is answered 405 here; a refused connection fails as fetch does', async (t) => {
  scope = undefined
  const before = seen.length
  t.equal((await post('/json')).status, 405)
  inScope('a')
  t.equal((await fetchFor(`${origin}/json`, { method: 'GET' })).status, 405)
  t.equal(seen.length, before, 'neither reached the server')
  const refused = fetchFor(`http://127.0.0.1:${await freePort()}/mcp`, { method: 'POST', body: '{}' })
  await t.rejects(refused, TypeError)
  const err: unknown = await refused.catch((e: unknown) => e)
  t.equal(((err as TypeError).cause as { code?: string }).code, 'ECONNREFUSED')
})
