import { Type } from 'typebox'

// Querystring and path pieces the list and by-id routes share: a UUID (an execution id, an
// audit entry id) and a page read newest first (`limit`, then `before` the last id seen).

/** Any case: ids are minted lower case, and a client may send them upper case. */
export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'

export const Uuid = (description?: string) => Type.String({ pattern: UUID_PATTERN, ...(description !== undefined ? { description } : {}) })

/** How many items a page holds. The validator applies no defaults: the route applies `defaultLimit` itself. */
export const PageLimit = (page: { max: number, defaultLimit: number }) => Type.Integer({ minimum: 1, maximum: page.max, default: page.defaultLimit })

/**
 * A list route's page as asked: `limit` with the route's default applied (the validator applies
 * none), and `before` only when sent.
 */
export function pageAsked (query: { limit?: number, before?: string }, defaultLimit: number): { limit: number, before?: string } {
  return { limit: query.limit ?? defaultLimit, ...(query.before !== undefined ? { before: query.before } : {}) }
}

/** The cursor of the next page: the last id of the previous one (its `nextBefore`). */
export const BeforeCursor = (description: string) => Uuid(description)

/** `/:id` of an execution. */
export const ExecutionIdParams = Type.Object({ id: Uuid('An execution id') })
