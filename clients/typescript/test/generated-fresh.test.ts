// src/generated/ is committed (the root lint type-checks src/session.ts before anything is
// generated): it must be what the service's current OpenAPI document generates.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { staleFiles } from '../scripts/generate.ts'

test('src/generated is what the current OpenAPI document generates (else: npm run generate --workspace clients/typescript)', async () => {
  assert.deepEqual(await staleFiles(), [])
})
