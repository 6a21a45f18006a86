import { defineConfig, type Plugin } from 'vite'
import { writeFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { brotliCompressSync, gzipSync, constants } from 'node:zlib'

const outDir = new URL('../dist/console/', import.meta.url).pathname

// Writes .gz and .br beside each asset (not the page: the service fills in its nonce), so the service sends them precompressed
// (@fastify/static preCompressed) without compressing on every request.
function precompress (): Plugin {
  return {
    name: 'precompress',
    apply: 'build',
    writeBundle (_options, bundle) {
      for (const file of [...Object.keys(bundle)]) {
        if (!/\.(js|css|svg|json)$/.test(file)) continue
        const path = join(outDir, file)
        const data = readFileSync(path)
        writeFileSync(`${path}.gz`, gzipSync(data, { level: 9 }))
        writeFileSync(`${path}.br`, brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }))
      }
    }
  }
}

export default defineConfig({
  root: new URL('.', import.meta.url).pathname,
  base: '/console/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  plugins: [precompress()],
  build: {
    outDir,
    emptyOutDir: true,
    target: 'es2022',
    // No inline helper script: the page's CSP allows scripts from this origin only.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    chunkSizeWarningLimit: 600,
    rolldownOptions: { checks: { pluginTimings: false } }
  }
})
