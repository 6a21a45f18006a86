import fp from 'fastify-plugin'
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { HttpErrorCode } from '../services/errors/index.ts'

const NONCE_PLACEHOLDER = '__CSP_NONCE__'

/**
 * The console's CSP: its own scripts, styles, images and API calls only. No inline script and
 * no eval, nothing from another origin; it replaces the API's `default-src 'none'` on /console
 * only. The page's one exception is <style> elements carrying this response's nonce:
 * CodeMirror (style-mod) mounts its themes as one <style> element in the document's head and
 * stamps it with the nonce (EditorView.cspNonce, console/src/editor.ts).
 *
 * No style attribute is allowed (`style-src-attr 'none'`, which a nonce cannot open anyway):
 * what the console and its libraries draw at run time (CodeMirror's tooltips, completion and
 * lint marks, Preact's `style` props, the timeline's bars, uPlot) is written through CSSOM
 * (`element.style.x = ...`, `style.cssText`), which CSP does not govern; a `style="..."` in
 * markup or a setAttribute('style', ...) would be reported, and the browser test fails on it.
 */
export function consoleCsp (nonce: string | null): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    nonce === null ? "style-src 'self'" : `style-src 'self' 'nonce-${nonce}'`,
    "style-src-attr 'none'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "object-src 'none'"
  ].join('; ')
}

/**
 * Where `npm run build` puts the console: dist/console at the project root. This file runs from
 * the sources (plugins/) or compiled (dist/plugins/), so the root is one or two levels up.
 */
export function consoleDir (): string {
  const pluginsDir = dirname(fileURLToPath(import.meta.url))
  const parent = dirname(pluginsDir)
  return basename(parent) === 'dist' ? join(parent, 'console') : join(parent, 'dist', 'console')
}

const NOT_FOUND = { error: 'Not Found', code: 'NOT_FOUND' satisfies HttpErrorCode }

async function consoleRoutes (fastify: FastifyInstance, opts: { root: string }): Promise<void> {
  const page = readFileSync(join(opts.root, 'index.html'), 'utf8')
  const sendPage = async (reply: FastifyReply): Promise<FastifyReply> => {
    const nonce = randomBytes(16).toString('base64')
    reply.header('content-security-policy', consoleCsp(nonce))
    // The page names the current build's hashed assets, so it is never served from a cache.
    reply.header('cache-control', 'no-cache')
    return await reply.type('text/html; charset=utf-8').send(page.replaceAll(NONCE_PLACEHOLDER, nonce))
  }
  // Helmet set the API's CSP on every response; the console's own replaces it here (onSend runs
  // after the handler, so a page's nonce CSP set there is kept).
  fastify.addHook('onSend', async (_request, reply, payload) => {
    if (!String(reply.getHeader('content-security-policy') ?? '').includes("script-src 'self'")) {
      reply.header('content-security-policy', consoleCsp(null))
    }
    return payload
  })
  await fastify.register(fastifyStatic, {
    root: opts.root,
    prefix: '/',
    // index.html is sent by the routes below, with a nonce; the rest are hashed assets.
    index: false,
    allowedPath: (pathName) => pathName !== '/index.html',
    // Vite wrote .br/.gz beside each asset; the smallest one the browser accepts is sent.
    preCompressed: true,
    cacheControl: false,
    // Hashed file names change with their content, so assets never need revalidating.
    setHeaders: (reply, path) => {
      reply.header('cache-control', path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache')
    }
  })
  // Only /console/ here: /console itself redirects to it (below).
  fastify.get('/', { schema: { hide: true }, prefixTrailingSlash: 'slash' }, async (_request, reply) => await sendPage(reply))
  // SPA fallback: a page's URL (/console/usage) gets the page; a missing file stays a 404.
  fastify.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split('?')[0] ?? ''
    if ((request.method !== 'GET' && request.method !== 'HEAD') || path.startsWith('/console/assets/') || /\.[a-z0-9]+$/i.test(path)) {
      return await reply.code(404).send(NOT_FOUND)
    }
    return await sendPage(reply)
  })
}

/**
 * GET /console: the web console (console/, built by `npm run build` into dist/console), served
 * with @fastify/static. Not built → /console answers 404 with a hint and a warning is logged.
 */
export default fp(async (fastify) => {
  const root = consoleDir()
  // Without the trailing slash the page's relative URLs would resolve against /.
  fastify.get('/console', { schema: { hide: true } }, async (_request, reply) => await reply.redirect('/console/', 301))
  if (!existsSync(join(root, 'index.html'))) {
    fastify.log.warn({ root }, 'console not built: run `npm run build` to serve /console')
    fastify.get('/console/*', { schema: { hide: true } }, async (_request, reply) => await reply.code(404).send({ ...NOT_FOUND, message: 'The console is not built: run npm run build' }))
    return
  }
  await fastify.register(consoleRoutes, { prefix: '/console', root })
}, { name: 'console', dependencies: ['config', 'security-headers'] })
