// Every error code the service can send, in one table: the error handler, refusals, the OpenAPI
// document (ErrorBody, ExecutionResult) and docs/api.md all read it. A code not listed here
// cannot leave the service (test/errors/registry.test.ts checks the sources for strays).
//
// surface: `http` codes are error responses, `execution` codes appear only as an ExecutionResult's
// error.code (status 200, or a stream's `final` event), `both` are either.
// message: the template of the message shown; `{name}` is filled from the error's parameters.
// Execution codes' messages are set where the enclave raises them; the template is the usual one.
// title: when set, the body is `{error: title, code, message}`, else `{error: message, code}`.
// retryable: the same request may succeed later, unchanged.

type ErrorSpec =
  | { status: number, surface: 'http' | 'both', message: string, retryable: boolean, description: string, title?: string }
  | { status: null, surface: 'execution', message: string, retryable: boolean, description: string }

export const registry = {
  UNAUTHORIZED: { status: 401, surface: 'http', message: 'Unauthorized: send Authorization: Bearer <token>', retryable: false, description: 'No credentials were sent to a route outside /api (e.g. /metrics with METRICS_TOKEN).' },
  MISSING_TOKEN: { status: 401, surface: 'http', message: 'No bearer token was sent: send the header Authorization: Bearer <token>', retryable: false, description: 'No Authorization header. WWW-Authenticate: Bearer realm="tenant-enclave".' },
  INVALID_TOKEN: { status: 401, surface: 'http', message: '{detail}', retryable: false, description: 'The bearer token was refused; `reason` says why (expired, not_yet_valid, missing_claim with `claim`, bad_signature, malformed, missing_bearer_prefix, wrong_issuer, wrong_audience), as does WWW-Authenticate: Bearer error="invalid_token", error_description="...".' },
  FORBIDDEN: { status: 403, surface: 'http', message: 'Forbidden: {reason}', retryable: false, description: 'The caller is known but may not do this (an admin route, another user\'s session).' },
  NOT_FOUND: { status: 404, surface: 'http', message: '{what}', retryable: false, description: 'No such route, tool, execution or audit entry for this tenant.' },
  BAD_REQUEST: { status: 400, surface: 'http', message: '{detail}', title: 'Bad Request', retryable: false, description: 'The request does not match its schema, or its body is not valid UTF-8 JSON.' },
  BODY_TOO_LARGE: { status: 413, surface: 'http', message: 'Request body is too large: at most {limit} bytes (BODY_LIMIT_BYTES)', retryable: false, description: 'The body is over BODY_LIMIT_BYTES (`limit`, in bytes).' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, surface: 'http', message: 'Unsupported Media Type: send Content-Type: application/json ({sent})', retryable: false, description: 'The body\'s Content-Type is not application/json (text/plain included), or is missing.' },
  CODE_TOO_LARGE: { status: 413, surface: 'http', message: 'Code size limit exceeded ({limit} KB)', retryable: false, description: 'The script is over the tier\'s maxCodeSizeKB (`limit`, in KB).' },
  EXECUTION_QUOTA_EXCEEDED: { status: 429, surface: 'http', message: 'Execution quota exceeded', retryable: true, description: 'The tenant has used today\'s executions (`limit`); they come back at `reset` (Retry-After).' },
  CPU_QUOTA_EXCEEDED: { status: 429, surface: 'http', message: 'CPU quota exceeded: the tenant has used its {limit} CPU seconds for today; runs are admitted again at {reset} (an admin can raise maxCpuSecondsPerDay)', retryable: true, description: 'The tenant\'s runs have used today\'s CPU budget (`limit`, maxCpuSecondsPerDay): a run is charged its measured CPU when it ends, and the next one is refused until `reset` (Retry-After).' },
  CONCURRENCY_LIMIT_EXCEEDED: { status: 429, surface: 'http', message: 'Concurrent execution limit exceeded', retryable: true, description: 'The tenant already runs `limit` executions at once.' },
  QUEUE_FULL: { status: 429, surface: 'http', message: 'Execution queue full: at most {limit} queued runs', retryable: true, description: 'The tenant already has `limit` queued runs.' },
  RATE_LIMITED: { status: 429, surface: 'http', message: 'Rate limit exceeded: {what}; retry in {after}', title: 'Rate limit exceeded', retryable: true, description: 'Too many requests per minute (`limit`), too many failed authentications from one address (AUTH_FAILURES_PER_MINUTE), or too many open event streams.' },
  CHECK_TOO_LARGE: { status: 413, surface: 'http', message: 'TypeScript checks are limited to {limit} KB on this tier', retryable: false, description: 'A TypeScript script sent to /api/execute/check is over its tier\'s check size (`limit`, in KB: half of maxCodeSizeKB).' },
  CHECK_LIMIT_EXCEEDED: { status: 429, surface: 'http', message: 'Too many checks at once: at most {limit} per tenant', retryable: true, description: 'The tenant already has `limit` pre-flight checks (/api/execute/check, check_script over MCP) in flight on this instance (free: 1) and as many waiting for them; or a waiting check was not handed a slot within its tier\'s check time bound.' },
  CHECK_TIER_BUSY: { status: 429, surface: 'http', message: 'Checks of the {tier} tier are at their share of this instance ({limit} at once, all tenants of the tier together): retry after Retry-After seconds', retryable: true, description: 'All tenants of the caller\'s tier together have `limit` pre-flight checks in flight on this instance (free 2, starter 4; enterprise is bounded per tenant only): they share one check thread with every other tier.' },
  CHECK_TIME_EXCEEDED: { status: 429, surface: 'http', message: 'Checks have used this tier\'s check time ({limit} ms a second): retry after Retry-After seconds', retryable: true, description: 'The tenant\'s pre-flight checks (/api/execute/check, check_script over MCP) have taken more than their tier\'s share of time (`limit`, ms of check time per second) on this instance.' },
  CHECK_TIMEOUT: { status: 422, surface: 'http', message: 'The check took longer than {timeoutMs} ms, its tier\'s bound', retryable: false, description: 'Parsing the script for /api/execute/check took longer than the tier allows; it was stopped.' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, surface: 'http', message: 'This Idempotency-Key was used with a different request in the last 24 hours', retryable: false, description: 'The Idempotency-Key came with another body than the first request that used it; send a new key for a new request.' },
  EXECUTION_FINISHED: { status: 409, surface: 'http', message: 'Execution already finished', retryable: false, description: 'The execution to cancel has already ended.' },
  APPROVAL_NOT_PENDING: { status: 409, surface: 'http', message: '{detail}', retryable: false, description: 'POST /api/executions/:id/approvals found nothing to decide: the run is not awaiting approval (it is queued, running or finished), or a callId named is not one of its pending calls (decided already, or no gated call of this run). GET the execution and its events for what is pending.' },
  INVALID_PUBLIC_KEY: { status: 400, surface: 'http', message: '{detail}', retryable: false, description: 'An encrypted session\'s clientPublicKey is not an uncompressed P-256 point.' },
  DECRYPTION_FAILED: { status: 400, surface: 'http', message: 'The frame does not decrypt with this session\'s key', retryable: false, description: 'An encrypted frame does not authenticate.' },
  SESSION_NOT_FOUND: { status: 404, surface: 'http', message: 'No such session', retryable: false, description: 'The encrypted session does not exist (or is gone).' },
  REPLAYED_FRAME: { status: 409, surface: 'http', message: 'The frame\'s counter is not above the last one this session accepted', retryable: false, description: 'An encrypted frame was sent again, or out of order.' },
  SESSION_EXPIRED: { status: 410, surface: 'http', message: 'The session has expired; open a new one', retryable: false, description: 'The encrypted session is past its expiresAt.' },
  INVALID_TOOL: { status: 400, surface: 'http', message: '{detail}', retryable: false, description: 'A platform tool definition the admin may not store.' },
  INVALID_OPENAPI: { status: 400, surface: 'http', message: '{detail}', retryable: false, description: 'An OpenAPI document the tool import cannot read.' },
  DEPENDENCY_UNAVAILABLE: { status: 503, surface: 'http', message: 'A backing service (PostgreSQL or Redis) is unreachable; retry later', title: 'Service unavailable', retryable: true, description: 'PostgreSQL or Redis cannot be reached; the request was not carried out.' },

  // The MCP endpoint and the remote MCP servers an admin registers.
  ORIGIN_NOT_ALLOWED: { status: 403, surface: 'http', message: 'Forbidden: origin {origin} is not allowed (MCP_ALLOWED_ORIGINS)', retryable: false, description: 'A request to /mcp whose Origin header is not in MCP_ALLOWED_ORIGINS (DNS-rebinding protection).' },
  METHOD_NOT_ALLOWED: { status: 405, surface: 'http', message: 'This MCP endpoint is stateless: it offers no server stream and no session to end (use POST)', retryable: false, description: 'GET or DELETE on /mcp: only POST is served.' },
  MCP_SERVER_REFUSED: { status: 400, surface: 'http', message: 'The MCP server\'s URL is refused: {detail}', retryable: false, description: 'A remote MCP server whose URL the service will not call (not http(s), credentials, an origin outside TOOL_UPSTREAMS, a link-local address).' },
  MCP_SERVER_NOT_FOUND: { status: 404, surface: 'http', message: 'No MCP server named {name}', retryable: false, description: 'No remote MCP server is registered under this name.' },
  MCP_SERVER_CONFLICT: { status: 409, surface: 'http', message: '{detail}', retryable: false, description: 'The remote MCP server\'s prefix is taken by another server.' },
  MCP_SERVER_UNREACHABLE: { status: 502, surface: 'http', message: 'The MCP server could not be reached or did not answer as MCP: {detail}', retryable: true, description: 'Registering or refreshing a remote MCP server failed to read its tools/list.' },

  // ExecutionResult codes, in the order the OpenAPI document lists them.
  VALIDATION_ERROR: { status: null, surface: 'execution', message: '{detail}', retryable: false, description: 'The script does not parse, or uses a construct the security level forbids.' },
  EXECUTION_ERROR: { status: null, surface: 'execution', message: '{detail}', retryable: false, description: 'The script threw (the message is the script\'s).' },
  TIMEOUT: { status: null, surface: 'execution', message: 'Execution timed out after {timeoutMs} ms{detail}', retryable: false, description: 'The run took longer than its timeout.' },
  MEMORY_LIMIT_EXCEEDED: { status: null, surface: 'execution', message: 'Memory limit of {memoryLimitMB} MB exceeded{detail}', retryable: false, description: 'The isolate\'s heap went over the tier\'s memory limit.' },
  OUTPUT_LIMIT_EXCEEDED: { status: null, surface: 'execution', message: 'Console output exceeded {maxConsoleBytes} bytes', retryable: false, description: 'The console output or the return value is over its limit.' },
  MAX_TOOL_CALLS: { status: null, surface: 'execution', message: 'Tool call limit exceeded: at most {maxToolCalls} calls per execution', retryable: false, description: 'The run made more tool calls than one execution may.' },
  TOOL_QUOTA_EXCEEDED: { status: null, surface: 'execution', message: 'Daily tool call quota exceeded ({limit})', retryable: true, description: 'The tenant has used today\'s tool calls; the run ends.' },
  USER_QUOTA_EXCEEDED: { status: 429, surface: 'both', message: 'User quota exceeded: this user has used its {limit} {unit} for today (perUser.{quota}); it resets at {reset}', retryable: true, description: 'One end user of the tenant has used a daily limit the tenant set for each user (`quota`: executionsPerDay, toolCallsPerDay or cpuSecondsPerDay; `limit`); it resets at `reset` (Retry-After). As a run\'s error (toolCallsPerDay) the run ends.' },
  PERMISSION_DENIED: { status: null, surface: 'execution', message: 'Permission denied: tool:{tool} is not among this token\'s permissions; ask for a token that carries it', retryable: false, description: 'The tool exists but the token lacks its tool:<name> permission (a script can catch it).' },
  TOOL_DISABLED: { status: null, surface: 'execution', message: 'Tool disabled: {tool} is turned off for this tenant; an admin can enable it (PUT `/admin/tenants/{tenantId}/tools/{tool}`)', retryable: false, description: 'The tool is disabled for this tenant (a script can catch it).' },
  TOOL_NOT_FOUND: { status: null, surface: 'execution', message: 'Tool not found: {tool} (did you mean {suggestions}?)', retryable: false, description: 'No tool has this name; the message names the nearest tools this token may call, or points to GET /api/tools (a script can catch it). Formerly TOOL_NOT_FOUND.' },
  TOOL_RATE_LIMITED: { status: null, surface: 'execution', message: 'Rate limit exceeded for {tool}: {calls} calls per {windowMs} ms', retryable: true, description: 'The tool\'s per-tenant rate limit (a script can catch it).' },
  TOOL_ERROR: { status: null, surface: 'execution', message: '{detail}', retryable: false, description: 'The tool failed, or its arguments or result were refused (a script can catch it).' },
  APPROVAL_REQUIRED: { status: null, surface: 'execution', message: 'Tool {tool} needs a person\'s approval before each call, and this run cannot wait for one: submit the script to POST `/api/executions`, where the run waits for a decision (POST /api/executions/:id/approvals) without holding a slot, or ask the platform to set the tool\'s approval to `never` for your tenant', retryable: false, description: 'A run that answers its caller directly (POST /api/execute, a session, the MCP endpoint) called a tool whose approval setting is `always`; the run ends (uncatchable) before the tool acts. Queued runs (POST /api/executions) wait for a decision instead.' },
  APPROVAL_EXPIRED: { status: null, surface: 'execution', message: 'Nobody decided on this run\'s pending tool calls within {ttl} (APPROVAL_TTL_SECONDS): the run ended without making them', retryable: false, description: 'A queued run waited for approval (awaiting_approval) longer than APPROVAL_TTL_SECONDS; the calls it waited on were never made. Submit it again to ask anew.' },
  APPROVAL_REJECTED: { status: null, surface: 'execution', message: 'A person rejected call {callId} of {tool} (position {position}){reason}', retryable: false, description: 'A gated tool call was rejected (POST /api/executions/:id/approvals): the call throws ApprovalRejectedError in the script, which can catch it; the tool did not act.' },
  REPLAY_DIVERGED: { status: null, surface: 'execution', message: 'The run took another path when it resumed: at position {position} it called {actual} where its record has {recorded}. A resumed run starts again from the beginning and must make the same tool calls in the same order; keep its branches to tool results, Math.random and the clock, which are replayed', retryable: false, description: 'A queued run resumed after an approval made a tool call (tool or arguments) other than the one recorded at that position; it ends (uncatchable) and nothing runs live.' },
  REPLAY_RECORD_TOO_LARGE: { status: null, surface: 'execution', message: 'The run cannot wait for an approval: its record of tool results and drawn values is over {limit} ({what}); make fewer or smaller tool calls before the gated one, or ask an admin for a larger tier', retryable: false, description: 'A queued run reached a gated call with more recorded tool results, Math.random or clock values than a waiting run may keep (the tier\'s maxJournalBytes: free 1 MiB, starter 4 MiB, enterprise 8 MiB, shown in the message); it ends instead of waiting.' },
  APPROVAL_WAIT_LIMIT: { status: null, surface: 'execution', message: 'The run cannot wait for an approval: {waiting} runs of this tenant already wait, and its tier allows {limit} at once (maxWaitingRuns). Decide on waiting runs (POST /api/executions/:id/approvals) or cancel them (DELETE /api/executions/:id), or wait until they end or expire, then submit this run again', retryable: true, description: 'A queued run reached a gated call while as many of its tenant\'s runs as its tier allows (maxWaitingRuns: free 5, starter 50, enterprise 1000) were awaiting_approval; it ends instead of waiting, and the gated call never acts. A place frees when a waiting run resumes, is cancelled, expires or its record ends.' },
  APPROVAL_STORAGE_EXCEEDED: { status: null, surface: 'execution', message: 'The run cannot wait for an approval: its record ({bytes} bytes) would take the tenant past its storage limit of {limit} bytes ({stored} bytes are kept now: documents and waiting runs\' records). Delete documents no longer needed (data:delete), decide on or cancel waiting runs (POST /api/executions/:id/approvals, DELETE /api/executions/:id), or ask an admin for a larger tier', retryable: false, description: 'The record a waiting run keeps counts toward its tenant\'s storageBytes while it waits; a queued run whose record would take the tenant past it ends instead of waiting (like STORAGE_QUOTA_EXCEEDED for documents), and the gated call never acts.' },
  RUNNER_CRASHED: { status: null, surface: 'execution', message: 'The sandbox process running this execution was stopped by another execution after this one had called tools; it was not retried because tools may have had effects', retryable: true, description: 'Another tenant\'s run took down the sandbox process after this run had called tools.' },
  INTERNAL_ERROR: { status: 500, surface: 'both', message: 'Internal Server Error', retryable: false, description: 'A fault in the service; details are only in its log.' },
  SESSION_ENDED: { status: null, surface: 'execution', message: 'The encrypted session expired during the run; the run was stopped', retryable: false, description: 'A run streamed over an encrypted session outlived the session: its stream ends with this `final` at the expiry.' },
  CANCELLED: { status: null, surface: 'execution', message: 'The execution was cancelled', retryable: false, description: 'The caller cancelled the run, or a streaming client left.' }
} as const satisfies Record<string, ErrorSpec>

type Registry = typeof registry
export type ErrorCode = keyof Registry
/** Codes an error response can carry. */
export type HttpErrorCode = { [C in ErrorCode]: Registry[C]['surface'] extends 'execution' ? never : C }[ErrorCode]
/** Codes an ExecutionResult's error can carry. */
export type ExecutionErrorCode = { [C in ErrorCode]: Registry[C]['surface'] extends 'http' ? never : C }[ErrorCode]
export type StatusOf<C extends HttpErrorCode> = Registry[C]['status']

// The `{name}`s of a template, as a union of names.
type Placeholders<T extends string> = T extends `${string}{${infer P}}${infer Rest}` ? P | Placeholders<Rest> : never
/** The parameters a code's message template needs. */
export type MessageParams<C extends ErrorCode> = Record<Placeholders<Registry[C]['message']>, string | number>

export const ALL_ERROR_CODES = Object.keys(registry) as ErrorCode[]
export const HTTP_ERROR_CODES = ALL_ERROR_CODES.filter((c) => registry[c].surface !== 'execution') as HttpErrorCode[]
export const EXECUTION_ERROR_CODES = ALL_ERROR_CODES.filter((c) => registry[c].surface !== 'http') as ExecutionErrorCode[]

export function isRegistryCode (code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(registry, code)
}

export function isHttpErrorCode (code: unknown): code is HttpErrorCode {
  return isRegistryCode(code) && registry[code].surface !== 'execution'
}

/** The code's message with its parameters filled in (one pass: a value's own braces stay). */
export function formatMessage<C extends ErrorCode> (code: C, params: MessageParams<C>): string {
  const values = params as Record<string, string | number>
  return registry[code].message.replace(/\{(\w+)\}/g, (_, name: string) => String(values[name] ?? ''))
}

/** Every placeholder of the code's template set to `text`: for a message that arrives whole. */
export function paramsOf<C extends ErrorCode> (code: C, text: string): MessageParams<C> {
  const params: Record<string, string> = {}
  for (const [, name] of registry[code].message.matchAll(/\{(\w+)\}/g)) params[name as string] = text
  return params as MessageParams<C>
}
