// Every key the quotas use in the limit store, in one place, so usage reads what admission counts.
export const executionsKey = (tenantId: string, day: string): string => `quota:executions:${tenantId}:${day}`
export const toolCallsKey = (tenantId: string, day: string): string => `quota:tool-calls:${tenantId}:${day}`
export const concurrencyKey = (tenantId: string): string => `quota:concurrency:${tenantId}`
export const toolWindowKey = (tenantId: string, tool: string, windowStart: number): string =>
  `quota:tool-window:${tenantId}:${tool}:${windowStart}`
// CPU milliseconds charged today, the tenant's and (when the tenant limits its users) each user's.
export const cpuMsKey = (tenantId: string, day: string): string => `quota:cpu-ms:${tenantId}:${day}`
// A tenant's end users' own counters (perUser limits). Built from the tenant id like the tenant's
// own keys, so an admission touching both stays on one tenant's keys.
export const userExecutionsKey = (tenantId: string, userId: string, day: string): string => `quota:user-executions:${tenantId}:${day}:${userId}`
export const userToolCallsKey = (tenantId: string, userId: string, day: string): string => `quota:user-tool-calls:${tenantId}:${day}:${userId}`
export const userCpuMsKey = (tenantId: string, userId: string, day: string): string => `quota:user-cpu-ms:${tenantId}:${day}:${userId}`
