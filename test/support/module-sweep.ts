// The script both sandbox-module suites run to show no module hands a script a way around the
// walls: every function reachable from each module's exports (two levels deep) is asked for its
// constructor, which must refuse to build code (EvalError). It answers `{ tried, leaks, host }`.
export function constructorSweep (modules: readonly string[]): string {
  const imports = modules.map((name, i) => `import * as m${i} from '${name}'`).join('\n')
  const names = modules.map((_, i) => `m${i}`).join(', ')
  return `${imports}
const seen = new Set(); let tried = 0; const leaks = []
const visit = (v, depth) => {
  if (v === null || (typeof v !== 'object' && typeof v !== 'function') || seen.has(v) || depth > 2) return
  seen.add(v)
  if (typeof v === 'function') {
    tried++
    try { v['const' + 'ructor']('return globalThis')(); leaks.push(v.name) } catch (e) { if (e.name !== 'EvalError') leaks.push(v.name + ':' + e.name) }
  }
  for (const k of Object.getOwnPropertyNames(v)) { let x; try { x = v[k] } catch { continue } visit(x, depth + 1) }
}
for (const m of [${names}]) visit(m, 0)
return { tried, leaks, host: [typeof process, typeof require, typeof module, typeof Buffer, typeof global] }`
}
