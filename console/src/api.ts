// The API client: the token lives in sessionStorage (gone when the tab closes) and travels only
// in the Authorization header, never in a URL, a log line or localStorage.
const TOKEN_KEY = 'tenant-enclave.token'

// The service's own description of a run's result, so the console never declares a copy.
export type { ExecutionResult } from '../../schemas/execution-result.ts'

export interface TokenClaims {
  tenantId: string
  userId?: string
  sub?: string
  permissions: string[]
  exp?: number
}

export function storedToken (): string | null {
  return sessionStorage.getItem(TOKEN_KEY)
}

export function storeToken (token: string | null): void {
  if (token === null) sessionStorage.removeItem(TOKEN_KEY)
  else sessionStorage.setItem(TOKEN_KEY, token)
}

/** The token's claims, read without checking the signature: only to shape the page. */
export function readClaims (token: string): TokenClaims | null {
  try {
    const part = token.split('.')[1] ?? ''
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'))
    const claims = JSON.parse(json) as Partial<TokenClaims>
    if (typeof claims.tenantId !== 'string') return null
    return { ...claims, tenantId: claims.tenantId, permissions: Array.isArray(claims.permissions) ? claims.permissions : [] }
  } catch {
    return null
  }
}

/** The server refused the token: the app goes back to sign-in with this message. */
export class AuthError extends Error {}

/** Any other non-2xx answer, with the body the server sent. */
export class ApiError extends Error {
  readonly status: number
  readonly body: Record<string, unknown>
  constructor (status: number, body: Record<string, unknown>) {
    super(typeof body.message === 'string' ? body.message : typeof body.error === 'string' ? body.error : `HTTP ${status}`)
    this.status = status
    this.body = body
  }
}

let onUnauthorized: (message: string) => void = () => {}
export function setUnauthorizedHandler (fn: (message: string) => void): void { onUnauthorized = fn }

export async function request (path: string, init: RequestInit = {}): Promise<Response> {
  const token = storedToken()
  const headers = new Headers(init.headers)
  if (token !== null) headers.set('authorization', `Bearer ${token}`)
  if (init.body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json')
  const res = await fetch(path, { ...init, headers, credentials: 'omit', cache: 'no-store' })
  if (res.status === 401) {
    const body = await res.json().catch(() => ({})) as { error?: string, code?: string }
    // The server's own words say why (expired, signed with another key...): shown as they are.
    const message = body.code === 'MISSING_TOKEN'
      ? 'Sign in with a token to continue.'
      : `The server refused your token: ${body.error ?? 'it is not valid'}. Paste a new one to continue.`
    onUnauthorized(message)
    throw new AuthError(message)
  }
  if (!res.ok) {
    const body = await res.json().catch(() => ({ error: res.statusText })) as Record<string, unknown>
    throw new ApiError(res.status, body)
  }
  return res
}

export async function getJson<T> (path: string): Promise<T> {
  return await (await request(path)).json() as T
}

export async function sendJson<T> (method: string, path: string, body: unknown): Promise<T> {
  const res = await request(path, { method, body: JSON.stringify(body) })
  return res.status === 204 ? undefined as T : await res.json() as T
}

/** Text of a route that other work may not have shipped yet: null on 404. */
export async function getOptionalText (path: string): Promise<string | null> {
  try {
    return await (await request(path)).text()
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null
    throw err
  }
}

// Shapes of the contract (docs/api.md) the pages read.
export interface Quotas {
  maxExecutionsPerDay: number
  maxExecutionDurationMs: number
  maxConcurrentExecutions: number
  maxToolCallsPerExecution: number
  maxToolCallsPerDay: number
  maxMemoryMB: number
  maxCodeSizeKB: number
  maxOutputSizeKB: number
  maxCpuSecondsPerDay: number
  storageBytes: number
  storageDocuments: number
  maxWaitingRuns: number
  maxJournalBytes: number
}
export interface Usage {
  tenantId: string
  tier: string
  executions: number
  toolCalls: number
  cpuMs: number
  concurrentExecutions: number
  waitingRuns: number
  storage: { bytes: number, documents: number, limitBytes: number, limitDocuments: number }
  quotas: Quotas
  periodStart: string
  periodEnd: string
}
export interface UsageDay { date: string, executions: number, failures: number, toolCalls: number, p50DurationMs: number }
/** An npm library scripts may import (GET /api/modules). */
export interface SandboxModule {
  name: string
  version: string
  description: string
}

export interface Tool {
  name: string
  description: string
  argsSchema: unknown
  resultSchema?: unknown
  enabled: boolean
  permitted: boolean
  rateLimit: { calls: number, windowMs: number } | null
}
export interface AuditEntry {
  id: string
  executionId: string
  userId: string
  action: 'code_execution' | 'execution_refused'
  success: boolean
  errorCode: string | null
  durationMs: number | null
  toolCalls: number
  createdAt: string
}
/** A queued run as GET /api/executions lists it. */
export interface ExecutionRun {
  executionId: string
  status: 'queued' | 'running' | 'awaiting_approval' | 'succeeded' | 'failed' | 'cancelled'
  submittedAt: string
  /** While it awaits approval: when it ends APPROVAL_EXPIRED if no one decides. */
  expiresAt?: string
  startedAt?: string
  finishedAt?: string
  result?: { success: boolean, error?: { code: string, message: string }, stats: { duration: number, toolCallCount: number } }
}
/** The outcome codes GET /api/executions?code= takes besides the rarer ones (typed in as they are). */
export const OUTCOME_CODES = ['OK', 'VALIDATION_ERROR', 'EXECUTION_ERROR', 'TIMEOUT', 'MEMORY_LIMIT_EXCEEDED', 'OUTPUT_LIMIT_EXCEEDED', 'MAX_TOOL_CALLS', 'TOOL_QUOTA_EXCEEDED', 'APPROVAL_REQUIRED', 'APPROVAL_REJECTED', 'APPROVAL_EXPIRED', 'REPLAY_DIVERGED', 'RUNNER_CRASHED', 'INTERNAL_ERROR', 'CANCELLED', 'SESSION_ENDED'] as const
export interface ToolCallRow {
  index?: number
  callIndex?: number
  tool: string
  outcome?: string
  code?: string
  durationMs?: number | null
  argsBytes?: number
  resultBytes?: number | null
  upstreamStatus?: number | null
  createdAt?: string
}
export interface Tenant {
  tenantId: string
  name: string | null
  tier: 'free' | 'starter' | 'enterprise'
  quotaOverrides: Partial<Quotas>
  quotas: Quotas
  /** Daily limits for each end user of the tenant; absent fields are unlimited. */
  perUser: Partial<Record<PerUserKey, number>>
  registered: boolean
}
export type PerUserKey = 'executionsPerDay' | 'toolCallsPerDay' | 'cpuSecondsPerDay'
/** GET /admin/tenants: registered tenants, alphabetical by id, a page at a time. */
export interface TenantPage {
  tenants: Array<{ tenantId: string, name: string | null, tier: Tenant['tier'], createdAt: string }>
  nextAfter: string | null
}
