import { Type, type TSchema } from 'typebox'
import { ErrorBody } from '../services/errors/error-body.ts'

// The pieces every route's `response` block is built from, so each response of the OpenAPI
// document says what it means (not "Default Response") and which headers come with it. The body
// schema is the one Fastify serialises with: `content` is Fastify's own per-media-type form.

type Headers = Record<string, TSchema>

/** What @fastify/rate-limit sends on every answer of a rate-limited route. */
export const RATE_LIMIT_HEADERS: Headers = {
  'x-ratelimit-limit': Type.Integer({ description: 'Requests the tenant may make per minute (RATE_LIMIT_PER_MINUTE)' }),
  'x-ratelimit-remaining': Type.Integer({ description: 'Requests left in the current minute' }),
  'x-ratelimit-reset': Type.Integer({ description: 'Seconds until the current minute\'s window ends' })
}

export const RETRY_AFTER: Headers = {
  'retry-after': Type.Integer({ description: 'Seconds to wait before the same request may succeed' })
}

/** A JSON response: its description, its body, and the headers it carries. */
export function json (description: string, schema: TSchema, headers: Headers = {}) {
  return { description, content: { 'application/json': { schema } }, ...(Object.keys(headers).length > 0 ? { headers } : {}) }
}

/** A response without a body (204, 304). */
export function empty (description: string, headers: Headers = {}) {
  return { description, ...Type.Null(), ...(Object.keys(headers).length > 0 ? { headers } : {}) }
}

/** The usual meaning of each error status; a route passes its own where it says more. */
export const ERROR_MEANINGS = {
  400: 'The request does not match its schema, or is otherwise malformed (BAD_REQUEST): the message names the field and the allowed values',
  401: 'No bearer token (MISSING_TOKEN), or one that does not verify (INVALID_TOKEN, with `reason`; WWW-Authenticate says why). Always a JSON ErrorBody, also when the request asked for an event stream',
  403: 'The token lacks the permission this route needs (FORBIDDEN)',
  404: 'Nothing by that name for this tenant (NOT_FOUND)',
  409: 'The request conflicts with the resource\'s current state',
  413: 'The body is over BODY_LIMIT_BYTES (BODY_TOO_LARGE)',
  422: 'The request is well formed but cannot be carried out as sent (see its code)',
  429: 'Over the tenant\'s per-minute request rate limit (RATE_LIMITED): retry after Retry-After seconds',
  502: 'A server the service had to reach on the caller\'s behalf did not answer as it should (see the message)',
  503: 'PostgreSQL or Redis does not answer, or the instance is shutting down (DEPENDENCY_UNAVAILABLE): retry later'
} as const
type ErrorStatus = keyof typeof ERROR_MEANINGS

/**
 * ErrorBody responses for the statuses named, each with its usual meaning unless `meanings`
 * gives the route's own. 429 and 503 carry Retry-After, 429 the rate-limit headers as well.
 */
export function errors (statuses: readonly ErrorStatus[], meanings: Partial<Record<ErrorStatus, string>> = {}) {
  const out: Partial<Record<ErrorStatus, ReturnType<typeof json>>> = {}
  for (const status of statuses) {
    const headers = status === 429 ? { ...RETRY_AFTER, ...RATE_LIMIT_HEADERS } : status === 503 ? RETRY_AFTER : {}
    out[status] = json(meanings[status] ?? ERROR_MEANINGS[status], ErrorBody, headers)
  }
  return out
}

/**
 * A route's schema with what the OpenAPI document says of it as an operation, all four always
 * given: the tag it is listed under, its operationId (the generated client's method name), a
 * one-line summary and what it does. `schema` is the rest (params, body, response...).
 */
export function operation<S extends object> (tag: string, operationId: string, summary: string, description: string, schema: S) {
  return { operationId, tags: [tag], summary, description, ...schema }
}
