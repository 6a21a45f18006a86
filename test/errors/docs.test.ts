// docs/api.md lists every code of the error registry, in the table the registry renders.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { ALL_ERROR_CODES } from '../../services/errors/index.ts'
import { API_DOC, documentedTable, renderErrorCodes } from '../../scripts/error-codes-doc.ts'

const doc = readFileSync(API_DOC, 'utf8')

t.test('docs/api.md lists every registry code', async (t) => {
  for (const code of ALL_ERROR_CODES) t.ok(doc.includes(`\`${code}\``), code)
})

t.test('its error-code table is the registry\'s (node scripts/error-codes-doc.ts --write)', async (t) => {
  t.equal(documentedTable(doc), renderErrorCodes())
})
