// No code generation from strings. isolated-vm lets contexts compile strings, so every way to
// reach eval or a Function constructor is replaced by a function that refuses. Shared memory,
// wasm and finalizer callbacks (which run after the execution) are not offered either.
import type { Intrinsics } from './intrinsics.ts'

export function lockCodeGeneration (k: Intrinsics): void {
  const { G, hide, defineProperty, getPrototypeOf, deleteProperty, asyncProto, EvalErrorCtor } = k

  function refuse (): never {
    throw new EvalErrorCtor('Code generation from strings is disabled in the enclave')
  }
  function denier (proto: object | null, name: string): () => void {
    const deny = function (): void { refuse() }
    defineProperty(deny, 'name', { value: name, configurable: true })
    if (proto !== null) {
      defineProperty(deny, 'prototype', { value: proto, writable: false, enumerable: false, configurable: false })
      defineProperty(proto, 'constructor', { value: deny, writable: false, enumerable: false, configurable: false })
    }
    return deny
  }
  hide(G, 'Function', denier(Function.prototype, 'Function'))
  denier(asyncProto, 'AsyncFunction')
  denier(getPrototypeOf(function * () {}), 'GeneratorFunction')
  denier(getPrototypeOf(async function * () {}), 'AsyncGeneratorFunction')
  hide(G, 'eval', denier(null, 'eval'))
  deleteProperty(G, 'WebAssembly')
  deleteProperty(G, 'SharedArrayBuffer')
  deleteProperty(G, 'Atomics')
  deleteProperty(G, 'FinalizationRegistry')
}
