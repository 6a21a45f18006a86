// Every key the quotas use in the limit store, in one place, so usage reads what admission counts.
export const executionsKey = (tenantId: string, day: string): string => `quota:executions:${tenantId}:${day}`
export const toolCallsKey = (tenantId: string, day: string): string => `quota:tool-calls:${tenantId}:${day}`
export const concurrencyKey = (tenantId: string): string => `quota:concurrency:${tenantId}`
export const toolWindowKey = (tenantId: string, tool: string, windowStart: number): string =>
  `quota:tool-window:${tenantId}:${tool}:${windowStart}`
