import fp from 'fastify-plugin'
import envSchema from 'env-schema'
import { Type, type Static } from 'typebox'

// The one description of every setting; README.md documents each variable.
export const ConfigSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  LOG_LEVEL: Type.Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { default: 'info' }),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATABASE_ADMIN_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  DATABASE_APP_ROLE: Type.String({ pattern: '^[a-z_][a-z0-9_]{0,62}$', default: 'enclave_app' }),
  DATABASE_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 200, default: 10 }),
  PGLITE_DIR: Type.Optional(Type.String({ minLength: 1 })),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  JWT_PUBLIC_KEY: Type.Optional(Type.String({ pattern: '-----BEGIN PUBLIC KEY-----' })),
  RATE_LIMIT_PER_MINUTE: Type.Integer({ minimum: 1, default: 600 }),
  TENANT_CACHE_TTL_MS: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 5000 }),
  BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, default: 2 * 1024 * 1024 }),
  ENCLAVE_RUNNERS: Type.Integer({ minimum: 0, maximum: 64, default: 0 }),
  SHUTDOWN_GRACE_MS: Type.Integer({ minimum: 0, default: 30_000 }),
  TOOL_RESULT_MAX_BYTES: Type.Integer({ minimum: 1024, maximum: 256 * 1024 * 1024, default: 4 * 1024 * 1024 }),
  TOOL_MAX_CONCURRENT_PER_RUN: Type.Integer({ minimum: 1, maximum: 64, default: 4 }),
  // 0 → max(1, floor(DATABASE_POOL_SIZE / 3)), worked out in services/db/open-database.ts
  DATABASE_TENANT_MAX_CONNECTIONS: Type.Integer({ minimum: 0, maximum: 200, default: 0 })
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
  return config
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

export default fp<{ config: Config }>(async (fastify, opts) => {
  fastify.decorate('config', opts.config)
}, { name: 'config' })
