// Mints a development token from JWT_SECRET:
//   npm run token -- --tenant acme --user alice --perm tool:data:query --perm tool:data:insert [--ttl 3600]
import { parseArgs } from 'node:util'
import { signToken } from '../services/tokens.ts'

const { values } = parseArgs({
  options: {
    tenant: { type: 'string' },
    user: { type: 'string', default: 'dev-user' },
    perm: { type: 'string', multiple: true, default: [] },
    ttl: { type: 'string', default: '3600' }
  }
})

const secret = process.env.JWT_SECRET
if (secret === undefined || secret.length < 32) {
  console.error('Set JWT_SECRET (at least 32 characters) to the secret the service uses.')
  process.exit(1)
}
if (values.tenant === undefined) {
  console.error('Usage: npm run token -- --tenant ID [--user ID] [--perm PERMISSION ...] [--ttl SECONDS]')
  process.exit(1)
}
const ttl = Number(values.ttl)
if (!Number.isInteger(ttl) || ttl <= 0) {
  console.error('--ttl must be a positive number of seconds')
  process.exit(1)
}
console.log(signToken({ tenantId: values.tenant, userId: values.user, permissions: values.perm }, { secret }, ttl))
