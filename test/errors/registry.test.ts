// The error registry is the one list of codes: every entry is complete, the OpenAPI document's
// enums are read from it, and no source file sends a code that is not in it.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import {
  ALL_ERROR_CODES, ErrorBody, EXECUTION_ERROR_CODES, formatMessage, HTTP_ERROR_CODES, registry, ServiceError
} from '../../services/errors/index.ts'
import { ERROR_CODES as RESULT_CODES } from '../../schemas/execution-result.ts'
import { codeSizeRefusal, refusalError } from '../../services/quotas/admission.ts'

const ROOT = join(import.meta.dirname, '..', '..')

t.test('every entry has a status for its surface, a message, retryable and a description', async (t) => {
  for (const code of ALL_ERROR_CODES) {
    const spec = registry[code]
    t.match(code, /^[A-Z][A-Z_]+$/, code)
    t.ok(spec.message.length > 0 && spec.description.length > 0, `${code} has a message and a description`)
    t.equal(typeof spec.retryable, 'boolean', `${code} says whether it is retryable`)
    if (spec.surface === 'execution') t.equal(spec.status, null, `${code} is never an HTTP status`)
    else t.ok(spec.status >= 400 && spec.status < 600, `${code} has an error status`)
  }
  // USER_QUOTA_EXCEEDED: a 429 at admission, and a run's end when the user's tool calls run out.
  t.same([...HTTP_ERROR_CODES, ...EXECUTION_ERROR_CODES].sort(), [...ALL_ERROR_CODES, 'INTERNAL_ERROR', 'USER_QUOTA_EXCEEDED'].sort(), 'only INTERNAL_ERROR and USER_QUOTA_EXCEEDED are on both surfaces')
})

t.test('the OpenAPI schemas list the registry\'s codes', async (t) => {
  const codeSchema = ErrorBody.properties.code as unknown as { enum: string[] }
  t.same(codeSchema.enum, HTTP_ERROR_CODES, 'ErrorBody.code is the HTTP codes')
  t.same([...RESULT_CODES], EXECUTION_ERROR_CODES, 'ExecutionResult error codes are the execution codes')
})

t.test('a ServiceError takes its status and message from the registry', async (t) => {
  const err = new ServiceError('FORBIDDEN', { reason: 'the admin permission is required' })
  t.equal(err.statusCode, 403)
  t.same(err.body(), { error: 'Forbidden: the admin permission is required', code: 'FORBIDDEN' })
  t.same(new ServiceError('BAD_REQUEST', { detail: 'body/code must be string' }).body(), { error: 'Bad Request', code: 'BAD_REQUEST', message: 'body/code must be string' })
  t.equal(formatMessage('NOT_FOUND', { what: 'a {what} in a value stays' }), 'a {what} in a value stays', 'a value is not read as a template')
  const refusal = codeSizeRefusal(64)
  t.same(refusal, { kind: 'code-size', status: 413, code: 'CODE_TOO_LARGE', error: 'Code size limit exceeded (64 KB)', limit: 64 })
  t.same(refusalError(refusal).body(), { error: 'Code size limit exceeded (64 KB)', code: 'CODE_TOO_LARGE', limit: 64 })
})

function sources (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? sources(path) : name.endsWith('.ts') ? [path] : []
  })
}

// Codes that are never sent: they tag errors inside the service (and are mapped to a registry
// code by the error handler or the enclave before anything leaves).
const INTERNAL_CODES = new Set([
  'STORE_UNAVAILABLE', // StoreUnavailableError: DEPENDENCY_UNAVAILABLE
  'DATABASE_UNAVAILABLE', // DatabaseUnavailableError: DEPENDENCY_UNAVAILABLE
  'EREFUSEDADDRESS', // the upstream address guard's refusal inside undici's connect: TOOL_ERROR
  'ALLOCATION_FAILED', // the isolate's alarm: MEMORY_LIMIT_EXCEEDED
  'OK' // not an error: a tool_result event's code for a call that succeeded
])

// Where a code is written in the sources: a `code` field or property, an audit errorCode, or the
// first argument of a function that makes an error from a code.
const CODE_SITES = [
  /\bcode\s*[:=]\s*'([A-Z][A-Z0-9_]*)'/g,
  /\berrorCode\s*:\s*'([A-Z][A-Z0-9_]*)'/g,
  /\b(?:ServiceError|enclaveError|EnclaveToolError|createError|toolError|trip|refuse|tellRefused|report|errorJson)\(\s*'([A-Z][A-Z0-9_]*)'/g,
  // (four letters or more, no digits: not a JOSE name such as 'EC' or 'ES256')
  /\bType\.Literal\('([A-Z][A-Z_]{3,})'\)/g
]

t.test('no source file sends a code outside the registry', async (t) => {
  const files = ['services', 'plugins', 'routes'].flatMap((dir) => sources(join(ROOT, dir)))
  t.ok(files.length > 50, 'the sources were found')
  const strays: string[] = []
  let seen = 0
  for (const file of files) {
    const text = readFileSync(file, 'utf8')
    for (const site of CODE_SITES) {
      for (const [, code] of text.matchAll(site)) {
        seen++
        if (!(code as string in registry) && !INTERNAL_CODES.has(code as string)) strays.push(`${file.slice(ROOT.length + 1)}: ${code}`)
      }
    }
  }
  t.ok(seen > 50, `the scan sees the codes (${seen} sites)`)
  t.same(strays, [], 'every code written in the sources is in the registry')
})
