import t from 'tap'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { sharedApp } from '../helper.ts'
import { consoleDir } from '../../plugins/console.ts'

// `npm test` builds the console first (pretest), so dist/console is there.
const asset = (prefix: string, ext: string): string => readdirSync(join(consoleDir(), 'assets')).find((f) => f.startsWith(prefix) && f.endsWith(ext)) as string

// Each test reads, or writes rows of its own tenant: the file's tests share one app (sharedApp).
t.test('/console serves the page with a strict CSP and a fresh nonce, no-cache; SPA URLs get the page', async (t) => {
  const app = await sharedApp()
  const redirect = await app.inject({ url: '/console' })
  t.equal(redirect.statusCode, 301)
  t.equal(redirect.headers.location, '/console/')

  const seen = new Set<string>()
  for (const url of ['/console/', '/console/usage', '/console/runs?x=1', '/console/admin/deep/link']) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 200, url)
    t.match(res.headers['content-type'], /^text\/html/, url)
    t.equal(res.headers['cache-control'], 'no-cache', `${url}: the page is always revalidated`)
    const csp = String(res.headers['content-security-policy'])
    const nonce = /'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1] as string
    t.ok(nonce !== undefined && nonce.length >= 22, `${url}: a nonce of 128 bits`)
    t.equal(csp, `default-src 'none'; script-src 'self'; style-src 'self' 'nonce-${nonce}'; style-src-attr 'none'; img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'`, `${url}: scripts from this origin only, no inline script, no other origin`)
    t.ok(res.body.includes(`<meta name="csp-nonce" content="${nonce}">`), `${url}: the page carries its nonce`)
    t.notOk(res.body.includes('__CSP_NONCE__'))
    t.notMatch(res.body, /<script(?![^>]*\bsrc=)[^>]*>/, `${url}: no inline script`)
    seen.add(nonce)
  }
  t.equal(seen.size, 4, 'each response has its own nonce')
  t.equal((await app.inject({ url: '/console/index.html' })).statusCode, 404, 'the page template itself is not served raw')
})

t.test('hashed assets are immutable and precompressed; a missing asset is a 404, not the page', async (t) => {
  const app = await sharedApp()
  const entry = asset('index-', '.js')
  const res = await app.inject({ url: `/console/assets/${entry}`, headers: { 'accept-encoding': 'gzip' } })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable')
  t.equal(res.headers['content-encoding'], 'gzip')
  t.match(res.headers['content-type'], /javascript/)
  t.match(res.headers.vary, /accept-encoding/i)
  t.match(res.headers['content-security-policy'], /^default-src 'none'; script-src 'self'; style-src 'self'; style-src-attr 'none';/)
  t.ok(gunzipSync(res.rawPayload).toString().length > 1000)
  for (const url of ['/console/assets/nope.js', '/console/favicon.ico', '/console/../package.json', '/console/%2e%2e/package.json']) {
    const missing = await app.inject({ url })
    t.equal(missing.statusCode, 404, url)
    t.notMatch(missing.body, /<html/i, `${url}: never the page`)
  }
  t.equal((await app.inject({ method: 'POST', url: '/console/usage', payload: {} })).statusCode, 404)
})

t.test('the API keeps its own CSP', async (t) => {
  const app = await sharedApp()
  const res = await app.inject({ url: '/health' })
  t.equal(res.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none';base-uri 'none';form-action 'none'")
})
