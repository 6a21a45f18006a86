// The request contract every entry point that runs a script shares: POST /api/execute, POST
// /api/executions and an encrypted session's frame. Its body, its code-size and timeout rules,
// its id, and how a refusal is answered over HTTP are written here once; routes and the
// execution path import them, none keeps a copy.
import { createHash, randomUUID } from 'node:crypto'
import { Type, type Static } from 'typebox'
import { codeSizeRefusal, refusalError, type QueueFullRefusal, type Refusal } from '../quotas/admission.ts'
import type { TenantQuotas } from '../tenants/tiers.ts'

/** The longest timeout a caller may ask for; its tier's maxExecutionDurationMs still bounds it. */
const MAX_REQUESTED_TIMEOUT_MS = 3_600_000

export const ScriptCode = Type.String({ minLength: 1, description: 'The body of an async function: top-level await and return work' })
export const ScriptLanguage = Type.Enum(['javascript', 'typescript'], { description: 'typescript: types are erased (positions kept) before anything else; they are not checked. Default javascript' })

/** The body of POST /api/execute and POST /api/executions, and the plaintext of a session frame. */
export const ExecutionRequestBodySchema = Type.Object({
  code: ScriptCode,
  language: Type.Optional(ScriptLanguage),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_REQUESTED_TIMEOUT_MS, description: 'May lower the tier\'s maxExecutionDurationMs, never raise it' }))
}, { $id: 'ExecutionRequest', additionalProperties: false })
export type ExecutionRequestBody = Static<typeof ExecutionRequestBodySchema>

/**
 * What a refused request answers (413, 429), in the clear or sealed in a session frame. 413 is
 * also Fastify's answer to a body over BODY_LIMIT_BYTES, which has no `limit`.
 */
export const RefusalBodySchema = Type.Object({
  error: Type.String(),
  code: Type.String(),
  message: Type.Optional(Type.String()),
  limit: Type.Optional(Type.Integer({ description: 'The limit that refused it: maxCodeSizeKB, the concurrency, a daily quota (executions; CPU seconds) or the queue bound' })),
  quota: Type.Optional(Type.Enum(['executionsPerDay', 'toolCallsPerDay', 'cpuSecondsPerDay'], { description: 'USER_QUOTA_EXCEEDED: which of the tenant\'s per-user limits the user has used up' })),
  reset: Type.Optional(Type.String({ format: 'date-time', description: 'When the daily quota resets (UTC midnight)' }))
}, { $id: 'Refusal', description: 'A run refused before it started: too large, over a quota or limit, or the queue full' })
export type RefusalBody = Static<typeof RefusalBodySchema>

/**
 * The request an idempotency key stands for: its code, language and timeout, hashed in a fixed
 * order (an absent field is not the same request as a field set to its default).
 */
export function requestSha256 (body: ExecutionRequestBody): string {
  return createHash('sha256').update(JSON.stringify([body.code, body.language ?? null, body.timeoutMs ?? null])).digest('hex')
}

/** Every execution's id, whichever entry point takes it: random, so ids say nothing about others. */
export const newExecutionId = (): string => randomUUID()

/** The code-size rule: UTF-8 bytes over maxCodeSizeKB are refused before any quota is touched. */
export function maxCodeBytes (quotas: TenantQuotas): number {
  return quotas.maxCodeSizeKB * 1024
}

/** The refusal a script over its tier's code size gets, or undefined when it fits. */
export function codeSizeRefusalOf (code: string, quotas: TenantQuotas): Refusal | undefined {
  return Buffer.byteLength(code, 'utf8') > maxCodeBytes(quotas) ? codeSizeRefusal(quotas.maxCodeSizeKB) : undefined
}

/** The timeout a run gets: the caller's wish may lower the tier's maxExecutionDurationMs, never raise it. */
export function runTimeoutMs (requestedMs: number | undefined, quotas: TenantQuotas): number {
  return Math.min(requestedMs ?? quotas.maxExecutionDurationMs, quotas.maxExecutionDurationMs)
}

/** A refusal as HTTP answers it: its status, its body, and Retry-After when the daily quota is out. */
export interface RefusalAnswer {
  status: 413 | 429
  body: RefusalBody
  /** Seconds until the daily quota resets; sent as Retry-After. */
  retryAfterSeconds?: number
}

export function refusalAnswer (refused: Refusal | QueueFullRefusal): RefusalAnswer {
  // The body is the registry's, shaped by ServiceError as every other error response is.
  const error = refusalError(refused)
  return {
    status: refused.status,
    body: error.body() as RefusalBody,
    ...(error.retryAfterSeconds !== undefined ? { retryAfterSeconds: error.retryAfterSeconds } : {})
  }
}
