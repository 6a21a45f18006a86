import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import tap from 'tap'
import app, { serverOptions } from '../app.ts'
import { loadConfig } from '../plugins/config.ts'
import { PGliteThread } from '../services/db/pglite-thread.ts'
import { signToken, type TokenClaims } from '../services/tokens.ts'
import { pgliteSnapshot } from './support/pglite-snapshot.ts'

export const TEST_SECRET = 'test-secret-that-is-at-least-32-characters-long'

/**
 * Runner processes of an app built by a test, unless the test sets ENCLAVE_RUNNERS itself. The
 * default (one a core) would start two or more node processes for every app, most of whose runs
 * are a line of code; placement over several runners is tested where it matters, with its own
 * setting.
 */
export const TEST_RUNNERS = '1'

interface TapLike { teardown: (fn: () => unknown) => void }

const databases = new Map<string, Promise<PGliteThread>>()

/**
 * The embedded database every app of this test process starts on (one per app role): the
 * suite's migrated snapshot, opened on first use. The apps a file builds share it as apps on
 * one PostgreSQL do (CI's external pass runs every file on one database), each test on tenants
 * of its own; starting PGlite was most of an app's start.
 */
async function processDatabase (appRole: string): Promise<PGliteThread> {
  let database = databases.get(appRole)
  if (database === undefined) {
    // Never closed: an app's own teardown may still write to it after the file's last test, and
    // the worker thread holds the process open only while a query is outstanding.
    database = pgliteSnapshot(appRole).then(async (snapshot) => {
      const thread = new PGliteThread('memory://', snapshot)
      await thread.waitReady
      return thread
    })
    databases.set(appRole, database)
  }
  return await database
}

export interface BuildOptions {
  /**
   * A database of the app's own (a fresh copy of the snapshot) rather than the one the test
   * process's apps share: for a test that needs one no other app has written to.
   */
  ownDatabase?: boolean
}

/**
 * Builds the whole app as server.ts does, on the environment's database and Redis (PGlite and
 * the in-process store unless CI sets DATABASE_URL / REDIS_URL), and closes it after the test.
 * `env` overrides settings; an `undefined` value removes one. `extend` may add routes (e.g. to
 * look at what the plugins put on a request); `logStream` receives the JSON log lines.
 */
export async function buildApp (
  t: TapLike,
  env: Record<string, string | undefined> = {},
  extend?: (fastify: FastifyInstance) => void,
  logStream?: { write: (line: string) => void },
  options: BuildOptions = {}
): Promise<FastifyInstance> {
  // A queue of this test process's own: on a shared Redis, test files running side by side took
  // each other's queued runs (counted, cancelled and rate-limited by another file's app). The apps
  // of one file still share it, as instances do; a test that wants another names its own.
  const merged: Record<string, string | undefined> = { ...process.env, JWT_SECRET: TEST_SECRET, LOG_LEVEL: 'silent', ENCLAVE_RUNNERS: TEST_RUNNERS, EXECUTION_QUEUE_NAME: `tests-${process.pid}`, ...env }
  for (const key of Object.keys(merged)) if (merged[key] === undefined) delete merged[key]
  const loaded = loadConfig(merged)
  // Embedded, the app runs on the process's database, or on a copy of the migrated snapshot of
  // its own (see pgliteSnapshot): either way without initdb's seconds.
  const embedded = loaded.DATABASE_URL === undefined && loaded.PGLITE_DIR === undefined
  const config = !embedded
    ? loaded
    : options.ownDatabase === true
      ? { ...loaded, pgliteStartFrom: await pgliteSnapshot(loaded.DATABASE_APP_ROLE) }
      : { ...loaded, pgliteShared: await processDatabase(loaded.DATABASE_APP_ROLE) }
  const serverConfig = serverOptions(config)
  const fastify = Fastify(logStream === undefined ? serverConfig : { ...serverConfig, logger: { ...(serverConfig.logger as object), stream: logStream } })
  t.teardown(async () => { await fastify.close() })
  await fastify.register(app, { config })
  extend?.(fastify)
  await fastify.ready()
  return fastify
}

let shared: Promise<FastifyInstance> | undefined

/**
 * One app on the default settings for the tests of a file that only read, or write rows of
 * their own tenants (as every file does on CI's one PostgreSQL): built on first use, closed when
 * the file's tests end. Each app is an enclave (runner processes) to start.
 */
export async function sharedApp (): Promise<FastifyInstance> {
  shared ??= buildApp(tap)
  return await shared
}

/** A tenant id no other test file uses, so files never share rows on a real server. */
export function uniqueTenantId (label: string): string {
  return `${label}-${randomBytes(5).toString('hex')}`
}

export function tokenFor (claims: Partial<TokenClaims> & { tenantId: string } & Record<string, unknown>, ttlSeconds = 3600): string {
  return signToken({ userId: 'user-1', permissions: [], ...claims }, { secret: TEST_SECRET }, ttlSeconds)
}

export function bearer (token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` }
}

export function adminHeaders (): { authorization: string } {
  return bearer(tokenFor({ tenantId: 'platform', userId: 'gateway', permissions: ['admin'] }))
}

const ALL_DATA_TOOLS = ['tool:data:query', 'tool:data:insert', 'tool:data:update', 'tool:data:delete']

export interface TestTenant {
  tenantId: string
  headers: { authorization: string }
  /** Runs a script as this tenant through POST /api/execute. */
  execute: (code: string, extra?: Record<string, unknown>) => Promise<import('light-my-request').Response>
}

/**
 * A fresh tenant on `tier` with optional quota overrides, and a token carrying `permissions`
 * (all data tools unless given).
 */
export async function createTenant (
  app: FastifyInstance,
  label: string,
  options: { tier?: 'free' | 'starter' | 'enterprise', quotaOverrides?: Record<string, number>, permissions?: string[], userId?: string } = {}
): Promise<TestTenant> {
  const tenantId = uniqueTenantId(label)
  if (options.tier !== undefined || options.quotaOverrides !== undefined) {
    const res = await app.inject({ method: 'PUT', url: `/admin/tenants/${tenantId}`, headers: adminHeaders(), payload: { tier: options.tier ?? 'free', quotaOverrides: options.quotaOverrides ?? {} } })
    if (res.statusCode !== 200) throw new Error(`could not create tenant: ${res.body}`)
  }
  const headers = bearer(tokenFor({ tenantId, userId: options.userId ?? `${label}-user`, permissions: options.permissions ?? ALL_DATA_TOOLS }))
  return {
    tenantId,
    headers,
    execute: async (code, extra = {}) => await app.inject({ method: 'POST', url: '/api/execute', headers, payload: { code, ...extra } })
  }
}

/** An audit row as the audit writer takes it, for tests that write rows directly. */
export function auditEntry (tenantId: string, executionId: string, createdAt = new Date()) {
  return {
    tenantId,
    executionId,
    userId: 'u',
    action: 'code_execution' as const,
    codeSha256: null,
    success: true,
    errorCode: null,
    durationMs: 1,
    toolCalls: 0,
    createdAt
  }
}
