import { createPrivateKey } from 'node:crypto'
import fp from 'fastify-plugin'
import envSchema from 'env-schema'
import { Type, type Static } from 'typebox'
import { IdentityKeyError, loadIdentityKey } from '../services/sessions/identity-key.ts'
import { clusterUrlOfNodes, isClusterUrl, parseClusterUrl } from '../services/store/redis-connection.ts'

// The one description of every setting; docs/operations.md documents each variable.
export const ConfigSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  LOG_LEVEL: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info' }),
  // auto: readable lines when stdout is a terminal, JSON when it is piped or collected.
  LOG_FORMAT: Type.Enum(['auto', 'json', 'pretty'], { default: 'auto' }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATABASE_ADMIN_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATABASE_APP_ROLE: Type.String({ pattern: '^[a-z_][a-z0-9_]{0,62}$', default: 'enclave_app' }),
  DATABASE_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 200, default: 10 }),
  PGLITE_DIR: Type.Optional(Type.String({ minLength: 1 })),
  // One server (redis://, rediss://) or a Redis Cluster (redis+cluster://h1:p1,h2:p2,...,
  // rediss+cluster:// for TLS); REDIS_CLUSTER_NODES (h1:p1,h2:p2,...) names a cluster too.
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?(\\+cluster)?://' })),
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ minLength: 1 })),
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  JWT_PUBLIC_KEY: Type.Optional(Type.String({ pattern: '-----BEGIN PUBLIC KEY-----' })),
  JWT_REQUIRE_EXP: Type.Boolean({ default: true }),
  JWT_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  JWT_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16 })),
  DOCS_ENABLED: Type.Boolean({ default: true }),
  CORS_ORIGINS: Type.String({ default: '' }),
  HTTP_REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 30_000 }),
  HTTP_HEADERS_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 10_000 }),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 72_000 }),
  RATE_LIMIT_PER_MINUTE: Type.Integer({ minimum: 1, default: 600 }),
  // Failed authentications (401s) one client address may make per minute, across instances.
  AUTH_FAILURES_PER_MINUTE: Type.Integer({ minimum: 1, default: 300 }),
  TENANT_CACHE_TTL_MS: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 5000 }),
  BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, default: 2 * 1024 * 1024 }),
  ENCLAVE_RUNNERS: Type.Integer({ minimum: 0, maximum: 64, default: 0 }),
  // best-effort by default so `npm run dev` works on a laptop without bubblewrap (with a warning);
  // the image sets required.
  RUNNER_SANDBOX: Type.Enum(['required', 'best-effort'], {
    default: 'best-effort',
    description: 'What a missing runner sandbox layer (user nobody, bubblewrap) means: required refuses to start; best-effort starts with a warning naming each'
  }),
  SHUTDOWN_GRACE_MS: Type.Integer({ minimum: 0, default: 30_000 }),
  TOOL_RESULT_MAX_BYTES: Type.Integer({ minimum: 1024, maximum: 256 * 1024 * 1024, default: 4 * 1024 * 1024 }),
  TOOL_MAX_CONCURRENT_PER_RUN: Type.Integer({ minimum: 1, maximum: 64, default: 4 }),
  // 0 → max(1, floor(DATABASE_POOL_SIZE / 3)), worked out in services/db/open-database.ts
  DATABASE_TENANT_MAX_CONNECTIONS: Type.Integer({ minimum: 0, maximum: 200, default: 0 }),
  // Connections all free (starter) tenants' runs may hold together, in % of DATABASE_POOL_SIZE
  // (at least 1); enterprise is bounded per tenant only. services/db/connection-shares.ts
  DATABASE_FREE_SHARE_PERCENT: Type.Integer({ minimum: 1, maximum: 100, default: 30 }),
  DATABASE_STARTER_SHARE_PERCENT: Type.Integer({ minimum: 1, maximum: 100, default: 60 }),
  // The database server's cores: free runs' statements together take at most half of them, starter
  // runs' all but one, so a paid tenant's statement finds a core. services/db/connection-shares.ts
  DATABASE_CPU_CORES: Type.Integer({ minimum: 1, maximum: 1024, default: 2 }),
  // The longest a free run's statement may take (a free scan that long holds the tier's cores).
  DATABASE_FREE_STATEMENT_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 2000 }),
  SERVICE_ROLE: Type.Enum(['all', 'api', 'worker'], { default: 'all' }),
  EXECUTION_RETENTION_DAYS: Type.Integer({ minimum: 1, maximum: 3650, default: 7 }),
  EXECUTION_LEASE_MS: Type.Integer({ minimum: 1000, maximum: 600_000, default: 30_000 }),
  EXECUTION_WORKER_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 1000, default: 16 }),
  // A queued run waiting for a person's approval ends APPROVAL_EXPIRED after this, undecided.
  APPROVAL_TTL_SECONDS: Type.Integer({ minimum: 1, maximum: 30 * 86400, default: 86400 }),
  // Services that share one Redis but not one database keep their runs apart by queue name.
  EXECUTION_QUEUE_NAME: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,63}$', default: 'executions' }),
  // Platform tools: origins their URLs may name, the assertion's signing key and issuer.
  TOOL_UPSTREAMS: Type.String({ default: '' }),
  // Hostnames (of TOOL_UPSTREAMS origins) whose DNS answers may be private; metadata stays refused.
  TOOL_UPSTREAM_PRIVATE_HOSTS: Type.String({ default: '' }),
  // Per upstream origin: connections (= calls in flight), one tenant's calls, each tier's share.
  TOOL_UPSTREAM_CONNECTIONS: Type.Integer({ minimum: 1, maximum: 1024, default: 64 }),
  TOOL_UPSTREAM_TENANT_MAX_IN_FLIGHT: Type.Integer({ minimum: 1, maximum: 1024, default: 8 }),
  TOOL_UPSTREAM_FREE_SHARE_PERCENT: Type.Integer({ minimum: 1, maximum: 100, default: 25 }),
  TOOL_UPSTREAM_STARTER_SHARE_PERCENT: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
  TOOL_UPSTREAM_ENTERPRISE_SHARE_PERCENT: Type.Integer({ minimum: 1, maximum: 100, default: 100 }),
  TOOL_SIGNING_KEY: Type.Optional(Type.String({ pattern: '-----BEGIN (EC )?PRIVATE KEY-----' })),
  SERVICE_ISSUER: Type.String({ minLength: 1, maxLength: 200, default: 'tenant-enclave' }),
  SESSION_IDENTITY_KEY: Type.Optional(Type.String({ pattern: '-----BEGIN (EC )?PRIVATE KEY-----' })),
  SESSION_TTL_SECONDS: Type.Integer({ minimum: 1, maximum: 86_400, default: 3600 }),
  // /mcp: browser origins it answers (any other Origin is refused: DNS rebinding), the
  // authorization servers its protected-resource metadata names, and its public base URL
  // (default: from the request's Host) for that document and the 401's resource_metadata.
  MCP_ALLOWED_ORIGINS: Type.String({ default: '' }),
  MCP_AUTHORIZATION_SERVERS: Type.String({ default: '' }),
  MCP_PUBLIC_URL: Type.Optional(Type.String({ pattern: '^https?://[^/]+$' })),
  // Remote MCP servers as platform tools: how often their tools/list is read again.
  MCP_UPSTREAM_REFRESH_MS: Type.Integer({ minimum: 1000, maximum: 86_400_000, default: 300_000 })
})

export type Config = Static<typeof ConfigSchema>

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Reads and validates settings; a bad value throws with the variable's name in the message. */
export function loadConfig (env: Record<string, string | undefined> = process.env): Config {
  let config: Config
  try {
    config = envSchema<Config>({ schema: ConfigSchema, data: env, env: false, dotenv: false })
  } catch (err) {
    throw new ConfigError(`Invalid configuration: ${(err as Error).message}`)
  }
  if (config.JWT_SECRET === undefined && config.JWT_PUBLIC_KEY === undefined) {
    throw new ConfigError('Invalid configuration: set JWT_SECRET (HS256, at least 32 characters) or JWT_PUBLIC_KEY (PEM, RS256/ES256)')
  }
  if (config.JWT_SECRET !== undefined && config.JWT_PUBLIC_KEY !== undefined) {
    throw new ConfigError('Invalid configuration: set only one of JWT_SECRET and JWT_PUBLIC_KEY')
  }
  if (config.DATABASE_ADMIN_URL !== undefined && config.DATABASE_URL === undefined) {
    throw new ConfigError('Invalid configuration: DATABASE_ADMIN_URL needs DATABASE_URL')
  }
  if (config.REDIS_URL !== undefined && config.REDIS_CLUSTER_NODES !== undefined) {
    throw new ConfigError('Invalid configuration: set only one of REDIS_URL and REDIS_CLUSTER_NODES (a cluster with a password or TLS: REDIS_URL=redis+cluster://user:password@host1:port1,host2:port2)')
  }
  const redis = redisUrl(config)
  if (redis !== undefined && isClusterUrl(redis)) {
    try {
      parseClusterUrl(redis)
    } catch (err) {
      throw new ConfigError(`Invalid configuration: ${config.REDIS_URL === undefined ? 'REDIS_CLUSTER_NODES' : 'REDIS_URL'}: ${(err as Error).message}`)
    }
  }
  // Node refuses a header timeout longer than the whole request's.
  if (config.HTTP_HEADERS_TIMEOUT_MS > config.HTTP_REQUEST_TIMEOUT_MS) {
    throw new ConfigError('Invalid configuration: HTTP_HEADERS_TIMEOUT_MS must not exceed HTTP_REQUEST_TIMEOUT_MS')
  }
  if (config.SESSION_IDENTITY_KEY !== undefined) {
    try {
      loadIdentityKey(config.SESSION_IDENTITY_KEY)
    } catch (err) {
      if (err instanceof IdentityKeyError) throw new ConfigError(`Invalid configuration: ${err.message}`)
      throw err
    }
  }
  for (const origin of corsOrigins(config)) {
    if (!ORIGIN.test(origin)) throw new ConfigError(`Invalid configuration: CORS_ORIGINS lists "${origin}", which is not an origin like https://app.example.com`)
  }
  for (const origin of toolUpstreams(config)) {
    if (!ORIGIN.test(origin)) throw new ConfigError(`Invalid configuration: TOOL_UPSTREAMS lists "${origin}", which is not an origin like https://api.example.com`)
  }
  for (const origin of listSetting(config.MCP_ALLOWED_ORIGINS)) {
    if (!ORIGIN.test(origin)) throw new ConfigError(`Invalid configuration: MCP_ALLOWED_ORIGINS lists "${origin}", which is not an origin like https://app.example.com`)
  }
  for (const server of listSetting(config.MCP_AUTHORIZATION_SERVERS)) {
    if (!/^https?:\/\/\S+$/.test(server)) throw new ConfigError(`Invalid configuration: MCP_AUTHORIZATION_SERVERS lists "${server}", which is not a URL like https://auth.example.com`)
  }
  if (config.TOOL_SIGNING_KEY !== undefined) {
    // Checked now so a wrong key stops the start, not the first tool call.
    let key
    try {
      key = createPrivateKey(config.TOOL_SIGNING_KEY)
    } catch {
      throw new ConfigError('Invalid configuration: TOOL_SIGNING_KEY is not a readable PEM private key')
    }
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new ConfigError('Invalid configuration: TOOL_SIGNING_KEY must be a P-256 (prime256v1) EC private key for ES256')
    }
  }
  return config
}

/** Where Redis is: REDIS_URL, or REDIS_CLUSTER_NODES as a cluster URL; undefined: in process. */
export function redisUrl (config: Pick<Config, 'REDIS_URL' | 'REDIS_CLUSTER_NODES'>): string | undefined {
  return config.REDIS_CLUSTER_NODES === undefined ? config.REDIS_URL : clusterUrlOfNodes(config.REDIS_CLUSTER_NODES)
}

/** The origins TOOL_UPSTREAMS lists (comma-separated; empty = none), without a trailing slash. */
export function toolUpstreams (config: Pick<Config, 'TOOL_UPSTREAMS'>): string[] {
  return config.TOOL_UPSTREAMS.split(',').map((origin) => origin.trim().replace(/\/$/, '')).filter((origin) => origin !== '')
}

// scheme://host[:port], nothing after: browsers send exactly this in the Origin header.
const ORIGIN = /^https?:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^https?:\/\/\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$/

/** A comma-separated setting's entries, trimmed, empty ones dropped. */
export function listSetting (value: string): string[] {
  return value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')
}

/** The origins CORS_ORIGINS lists (comma-separated; empty = none). */
export function corsOrigins (config: Pick<Config, 'CORS_ORIGINS'>): string[] {
  return config.CORS_ORIGINS.split(',').map((origin) => origin.trim()).filter((origin) => origin !== '')
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

export default fp<{ config: Config }>(async (fastify, opts) => {
  fastify.decorate('config', opts.config)
}, { name: 'config' })
