import type { FastifyInstance } from 'fastify'
import { signToken } from './tokens.ts'
import { TIERS } from './tenants/tiers.ts'

const DEMO_PERMISSIONS = ['tool:data:query', 'tool:data:insert', 'tool:data:update', 'tool:data:delete']

/**
 * For the embedded first run: one demo tenant per tier, a ready token for each (and one admin
 * token), and a curl line that works as printed.
 */
export async function createDemoTenants (fastify: FastifyInstance, secret: string, baseUrl: string): Promise<string> {
  const lines: string[] = [
    '', `tenant-enclave on Node.js ${process.version} (V8 ${process.versions.v8})`,
    'Embedded demo: a JWT secret was generated for this process; these tokens work until it stops.'
  ]
  let firstToken = ''
  for (const tier of TIERS) {
    const tenantId = `demo-${tier}`
    await fastify.tenants.upsert(tenantId, { tier, name: `Demo ${tier} tenant` })
    const token = signToken({ tenantId, userId: `${tenantId}-user`, permissions: DEMO_PERMISSIONS }, { secret }, 24 * 3600)
    if (firstToken === '') firstToken = token
    lines.push(`  ${tenantId.padEnd(16)} TOKEN=${token}`)
  }
  const adminToken = signToken({ tenantId: 'platform', userId: 'gateway', permissions: ['admin'] }, { secret }, 24 * 3600)
  lines.push(`  ${'admin'.padEnd(16)} TOKEN=${adminToken}`)
  lines.push('', 'Try it:')
  lines.push(`  curl -s -X POST ${baseUrl}/api/execute -H 'Authorization: Bearer ${firstToken}' -H 'Content-Type: application/json' -d '{"code":"await callTool(\\"data:insert\\", {document: {hello: \\"world\\"}}); return await callTool(\\"data:query\\", {})"}'`)
  lines.push(`  curl -s ${baseUrl}/api/usage -H 'Authorization: Bearer ${firstToken}'`)
  lines.push(`  curl -s ${baseUrl}/admin/tenants/demo-starter -H 'Authorization: Bearer ${adminToken}'`)
  lines.push(`  API docs: ${baseUrl}/docs`, '')
  // The secret dies with the process, so saying it costs nothing and lets a developer mint
  // tokens for other tenants, users and permissions without restarting.
  lines.push('Mint another token for this process (any tenant id, user and tool:<name> permissions):')
  lines.push(`  JWT_SECRET=${secret} npm run --silent token -- --tenant my-tenant --user me --perm tool:data:query --perm tool:data:insert`, '')
  return lines.join('\n')
}
