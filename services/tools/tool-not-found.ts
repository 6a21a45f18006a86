import { closestNames } from '../errors/did-you-mean.ts'
import type { TenantTool } from './tool-registry.ts'

/** The tools this caller may call: enabled for the tenant and carried in the token's permissions. */
export function callableToolNames (tools: readonly TenantTool[], permissions: readonly string[]): string[] {
  const granted = new Set(permissions)
  return tools.filter((tool) => tool.enabled && granted.has(`tool:${tool.definition.name}`)).map((tool) => tool.definition.name)
}

/**
 * TOOL_NOT_FOUND's message: the name no tool has, and the nearest names among the tools this
 * caller may call. Only those are ever named, so the message reveals no tool the caller could
 * not already list with GET /api/tools.
 */
export function toolNotFoundMessage (name: string, callable: readonly string[]): string {
  const close = closestNames(name, callable)
  if (close.length === 0) return `Tool not found: ${name} (no tool this token may call has a similar name; GET \`/api/tools\` lists them)`
  return `Tool not found: ${name} (did you mean ${close.join(' or ')}?)`
}

export function permissionDeniedMessage (name: string): string {
  return `Permission denied: tool:${name} is not among this token's permissions; ask for a token that carries it`
}

// Routes are quoted in backticks: the enclave scrubs what looks like a host path from messages.
export function toolDisabledMessage (name: string): string {
  return `Tool disabled: ${name} is turned off for this tenant; an admin can enable it (PUT \`/admin/tenants/{tenantId}/tools/${name}\`)`
}
