// The `code`s that mean PostgreSQL or Redis could not be reached. pg and ioredis report a lost
// connection with plain Errors ("Connection terminated", "Connection is closed."), so the calls
// into them tag such failures where they happen: StoreUnavailableError (services/store) and
// DatabaseUnavailableError (services/db/pg-errors.ts). Nothing here reads a message.
const UNREACHABLE_CODES = new Set([
  'STORE_UNAVAILABLE', 'DATABASE_UNAVAILABLE',
  // Node's socket and DNS errors
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH',
  // PostgreSQL: admin shutdown, crash shutdown, cannot connect now, connection failures
  '57P01', '57P02', '57P03', '08000', '08001', '08003', '08006'
])

/** True when an error (or one of its causes) means PostgreSQL or Redis could not be reached: a 503. */
export function isDependencyFailure (err: unknown, depth = 0): boolean {
  if (!(err instanceof Error) || depth > 8) return false
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return true
  // A connection to a host with several addresses fails with each one's error.
  if (err instanceof AggregateError && err.errors.some((e) => isDependencyFailure(e, depth + 1))) return true
  return err.cause !== undefined && err.cause !== err && isDependencyFailure(err.cause, depth + 1)
}
