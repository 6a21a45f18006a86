// Every key the quotas use in the limit store, in one place, so usage reads what admission counts.
// Each carries its tenant's hash tag: on a Redis Cluster every key of one tenant lives in one
// slot, so a script that takes several of them at once (admission: a lease and a counter) runs
// on one node. Nothing may come before the tag that contains a brace (Redis hashes the first {...}).

/** The hash tag of every key of one tenant. */
export const tenantTag = (tenantId: string): string => `{t:${tenantId}}`

export const executionsKey = (tenantId: string, day: string): string => `quota:${tenantTag(tenantId)}:executions:${day}`
export const toolCallsKey = (tenantId: string, day: string): string => `quota:${tenantTag(tenantId)}:tool-calls:${day}`
export const concurrencyKey = (tenantId: string): string => `quota:${tenantTag(tenantId)}:concurrency`
export const toolWindowKey = (tenantId: string, tool: string, windowStart: number): string =>
  `quota:${tenantTag(tenantId)}:tool-window:${tool}:${windowStart}`
/** A tenant's queued runs (a lease each), bounded together with its daily executions. */
export const queuedKey = (tenantId: string): string => `executions:${tenantTag(tenantId)}:queued`
