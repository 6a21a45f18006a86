// What a user of the built package imports, by its name: both entries resolve to the build and
// carry their functions. Needs `npm run build` first (CI builds before it tests).
import { test } from 'node:test'
import assert from 'node:assert/strict'

test('the built package exports the client at its root and the session client at /session', async () => {
  const main = await import('@tenant-enclave/client')
  assert.equal(typeof main.createEnclaveClient, 'function')
  assert.equal(typeof main.EnclaveError, 'function')
  const session = await import('@tenant-enclave/client/session')
  assert.equal(typeof session.openSession, 'function')
  assert.equal(typeof session.EnclaveSessionError, 'function')
  assert.equal(session.PROTOCOL, 'tenant-enclave/v1')
})
