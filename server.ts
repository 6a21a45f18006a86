import './runtime-check.ts'
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import pino from 'pino'
import pinoPretty from 'pino-pretty'
import closeWithGrace from 'close-with-grace'
import app, { serverOptions } from './app.ts'
import { ConfigError, loadConfig } from './plugins/config.ts'
import { createDemoTenants } from './services/demo-tenants.ts'
import { SandboxError } from './services/enclave/index.ts'

// The only place that creates Fastify and listens.
const env = { ...process.env }
// Embedded first run: no database and no key configured means a throwaway demo secret.
const demo = env.DATABASE_URL === undefined && env.JWT_SECRET === undefined && env.JWT_PUBLIC_KEY === undefined
if (demo) env.JWT_SECRET = randomBytes(32).toString('base64url')

let config
try {
  config = loadConfig(env)
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message)
    process.exit(1)
  }
  throw err
}

// Log lines are buffered and written a few KB at a time, off the main thread, at least every
// LOG_FLUSH_MS: a write to a pipe wakes its reader, and one per line (three per run at
// LOG_LEVEL=info) cost a 2-core host a fifth of its requests per second. pino writes what is
// pending when the process exits, also on SIGTERM; a hard kill can lose the last LOG_FLUSH_MS.
const LOG_FLUSH_MS = 250
const logDestination = pino.destination({ dest: 1, sync: false, minLength: 4096 })
// A destination closed under it (stdout gone) must not turn the timer into a crash.
setInterval(() => { try { logDestination.flush() } catch {} }, LOG_FLUSH_MS).unref()
// A person at a terminal reads lines with local times and levels; anything that collects the
// logs (a pipe, a container runtime) keeps getting one JSON object per line.
const pretty = config.LOG_FORMAT === 'pretty' || (config.LOG_FORMAT === 'auto' && process.stdout.isTTY)
const logStream = pretty ? pinoPretty({ destination: logDestination, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }) : logDestination
const options = serverOptions(config)
const fastify = Fastify({ ...options, logger: { ...(options.logger as object), stream: logStream } })
try {
  await fastify.register(app, { config })
} catch (err) {
  // RUNNER_SANDBOX=required on a machine without every layer: the message says what to provide.
  if (!(err instanceof SandboxError)) throw err
  console.error(err.message)
  process.exit(1)
}

closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
  if (err !== undefined) fastify.log.error({ err }, 'shutting down after an error')
  else fastify.log.info({ signal }, 'shutting down: draining in-flight requests')
  await fastify.close()
})

try {
  await fastify.listen({ port: config.PORT, host: config.HOST })
  fastify.log.info({ node: process.version, v8: process.versions.v8 }, `runtime: Node.js ${process.version}, V8 ${process.versions.v8}`)
  fastify.log.info({ thumbprint: fastify.sessionIdentity.thumbprint }, `encrypted sessions: identity key thumbprint (pin it in clients) ${fastify.sessionIdentity.thumbprint}`)
  // Open by default for development; on a real database this is likely a deployment.
  if (config.DATABASE_URL !== undefined && (config.METRICS_TOKEN === undefined || config.DOCS_ENABLED)) {
    fastify.log.warn({ metricsOpen: config.METRICS_TOKEN === undefined, docsOpen: config.DOCS_ENABLED }, 'GET /metrics or /docs is open to anyone: set METRICS_TOKEN and DOCS_ENABLED=false unless that is intended')
  }
} catch (err) {
  fastify.log.fatal({ err }, 'could not start')
  process.exit(1)
}

if (demo) {
  const { port } = fastify.server.address() as AddressInfo
  const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? '127.0.0.1' : config.HOST
  // Through the log's destination, so the banner comes after the start-up lines, not among them.
  logDestination.write(await createDemoTenants(fastify, config.JWT_SECRET as string, `http://${host}:${port}`) + `  Console: http://${host}:${port}/console/ (sign in with a token above)\n\n`)
}
