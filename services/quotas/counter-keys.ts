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
// CPU milliseconds charged today, the tenant's and (when the tenant limits its users) each user's.
export const cpuMsKey = (tenantId: string, day: string): string => `quota:${tenantTag(tenantId)}:cpu-ms:${day}`
// A tenant's end users' own counters (perUser limits): the tenant's tag first, so an admission
// taking the tenant's and the user's counters stays in one slot (the userId may hold braces).
export const userExecutionsKey = (tenantId: string, userId: string, day: string): string => `quota:${tenantTag(tenantId)}:user-executions:${day}:${userId}`
export const userToolCallsKey = (tenantId: string, userId: string, day: string): string => `quota:${tenantTag(tenantId)}:user-tool-calls:${day}:${userId}`
export const userCpuMsKey = (tenantId: string, userId: string, day: string): string => `quota:${tenantTag(tenantId)}:user-cpu-ms:${day}:${userId}`
/** A tenant's runs waiting for approval (a lease each), bounded by its tier's maxWaitingRuns. */
export const waitingKey = (tenantId: string): string => `executions:${tenantTag(tenantId)}:waiting`
