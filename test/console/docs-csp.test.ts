import t from 'tap'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, dirname } from 'node:path'
import { buildApp } from '../helper.ts'
import { SWAGGER_LOGO_STYLE } from '../../plugins/swagger.ts'

t.test('/docs admits Swagger UI\'s one inline stylesheet by its hash and nothing else inline', async (t) => {
  const app = await buildApp(t)
  const res = await app.inject({ url: '/docs/' })
  t.equal(res.statusCode, 200)
  const csp = String(res.headers['content-security-policy'])
  const styleSrc = /style-src ([^;]*)/.exec(csp)?.[1]?.trim()
  t.match(styleSrc, /^'self' 'sha256-[A-Za-z0-9+/]{43}='$/, 'style-src: this origin and one hash, no https:, no unsafe-inline')
  t.notMatch(csp, /unsafe-inline/)
  t.match(csp, /script-src 'self'\s*;/, 'scripts from this origin only')
  // The hashed text is still what the installed Swagger UI puts in its logo's <style>.
  const dir = dirname(createRequire(import.meta.url).resolve('@fastify/swagger-ui'))
  const preset = readFileSync(join(dir, 'static', 'swagger-ui-standalone-preset.js'), 'utf8')
  t.ok(preset.includes(`createElement("style",null,"${SWAGGER_LOGO_STYLE}")`), 'the preset\'s inline logo style is the hashed one')
  t.equal(preset.split('createElement("style"').length - 1, 1, 'and it is the preset\'s only inline stylesheet')
})
