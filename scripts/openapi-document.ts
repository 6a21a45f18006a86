import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import app, { serverOptions } from '../app.ts'
import { loadConfig } from '../plugins/config.ts'

/**
 * Writes the OpenAPI document the service serves at /docs/json (default dist/openapi.json, or
 * the path given), built in process on embedded defaults: the gates (redocly, the SDK) read the
 * very document a running service would serve, without a server or database to start first.
 */
export async function openapiDocument (): Promise<Record<string, unknown>> {
  // Only settings that do not shape the document: a throwaway secret, no logging.
  const config = loadConfig({ JWT_SECRET: randomBytes(32).toString('hex'), LOG_LEVEL: 'silent' })
  const fastify = Fastify(serverOptions(config))
  try {
    await fastify.register(app, { config })
    await fastify.ready()
    return fastify.swagger() as unknown as Record<string, unknown>
  } finally {
    await fastify.close()
  }
}

if (import.meta.main) {
  const out = resolve(process.argv[2] ?? 'dist/openapi.json')
  await mkdir(dirname(out), { recursive: true })
  await writeFile(out, JSON.stringify(await openapiDocument(), null, 2) + '\n')
  console.log(`wrote ${out}`)
}
