import createError from '@fastify/error'
import { Type } from 'typebox'

// Domain errors with stable codes. The error handler shows the message of a 4xx to the client,
// and nothing but a generic body for a 5xx.
export const UnauthorizedError = createError('UNAUTHORIZED', 'Unauthorized', 401)
export const InvalidTokenError = createError('INVALID_TOKEN', 'Invalid token', 401)
export const ForbiddenError = createError('FORBIDDEN', 'Forbidden: %s', 403)
export const NotFoundError = createError('NOT_FOUND', '%s', 404)

/** The body of every error response; some errors add fields (limit, reset). */
export const ErrorBody = Type.Object({
  error: Type.String({ description: 'What went wrong, for people' }),
  code: Type.Optional(Type.String({ description: 'Stable machine-readable code' })),
  message: Type.Optional(Type.String())
}, { additionalProperties: true })

const UNREACHABLE_CODES = new Set([
  'STORE_UNAVAILABLE', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN',
  // PostgreSQL: admin shutdown, cannot connect now, connection failures
  '57P01', '57P02', '57P03', '08000', '08001', '08003', '08006'
])

/** True when an error means PostgreSQL or Redis could not be reached: the client gets a 503. */
export function isDependencyFailure (err: unknown): boolean {
  if (!(err instanceof Error)) return false
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return true
  if (/Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection is closed|Stream isn't writeable/i.test(err.message)) return true
  return err.cause !== undefined && err.cause !== err && isDependencyFailure(err.cause)
}
