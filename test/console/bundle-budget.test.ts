import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { consoleDir } from '../../plugins/console.ts'

// The budget README states: the first page (sign-in and the app shell) loads at most 250 KB of
// gzipped JavaScript and CSS, and so does the Playground with CodeMirror; CodeMirror and uPlot
// load only on the pages that use them.
const FIRST_PAGE_BUDGET = 250 * 1024

t.test('the first page stays within its budget; the editor and the chart are loaded lazily', async (t) => {
  const root = consoleDir()
  const page = readFileSync(join(root, 'index.html'), 'utf8')
  const urls = [...page.matchAll(/(?:src|href)="\/console\/(assets\/[^"]+)"/g)].map((m) => m[1] as string)
  t.ok(urls.some((u) => u.endsWith('.js')), 'the page loads a script')
  const gzipped = (file: string): number => gzipSync(readFileSync(join(root, file)), { level: 9 }).length
  const firstPage = urls.reduce((sum, file) => sum + gzipped(file), 0)
  t.ok(firstPage <= FIRST_PAGE_BUDGET, `first page: ${(firstPage / 1024).toFixed(1)} KB gzip of ${FIRST_PAGE_BUDGET / 1024} KB`)
  t.notOk(urls.some((u) => /editor|chart/.test(u)), 'CodeMirror and uPlot are not on the first page')
  const assets = readdirSync(join(root, 'assets'))
  t.ok(assets.some((f) => /^editor-.*\.js$/.test(f)), 'CodeMirror is its own chunk')
  t.ok(assets.some((f) => /^chart-.*\.js$/.test(f)), 'uPlot is its own chunk')
  // The heaviest page, the Playground, with CodeMirror loaded, keeps to the same budget.
  const editor = assets.filter((f) => /^editor-.*\.(js|css)$/.test(f)).reduce((sum, f) => sum + gzipped(join('assets', f)), 0)
  t.ok(firstPage + editor <= FIRST_PAGE_BUDGET, `Playground with the editor: ${((firstPage + editor) / 1024).toFixed(1)} KB gzip of ${FIRST_PAGE_BUDGET / 1024} KB`)
  for (const file of assets.filter((f) => /\.(js|css)$/.test(f))) t.comment(`${file}: ${(gzipped(join('assets', file)) / 1024).toFixed(1)} KB gzip`)
})
