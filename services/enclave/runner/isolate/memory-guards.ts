// Memory. isolated-vm counts the heap and ordinary ArrayBuffers against the limit, but not the
// pages a resizable ArrayBuffer commits as it grows, and V8 lets one huge string through before
// the limit is checked. Those paths are bounded here; the host also checks the total after the
// run, and the supervisor watches each runner's RSS.
// A refused allocation is an uncatchable alarm raised from here: a script can throw an error that
// looks like an allocation failure, but cannot make the host report a limit.
import type { Intrinsics } from './intrinsics.ts'
import type { RunState } from './run-state.ts'

type Ctor = (abstract new (...args: never[]) => object) & { prototype: object | null }
type AnyFn = (this: unknown, ...args: unknown[]) => unknown

export function guardMemory (k: Intrinsics, run: RunState): void {
  const {
    G, hide, apply, defineProperty, construct, setPrototypeOf, getPrototypeOf, getOwnPropertyDescriptors, ownKeys,
    isArray, NumberCtor, StringCtor, RangeErrorCtor, WeakMapCtor, weakSet
  } = k

  function overMemory (what: string): never {
    return run.trip('MEMORY_LIMIT_EXCEEDED', 'Memory limit of ' + (run.memBytes / 1048576) + ' MB exceeded: ' + what)
  }
  // V8 refused an ArrayBuffer: the script may catch the RangeError and go on with less, but if it
  // ends with that error the host, told here, reports MEMORY_LIMIT_EXCEEDED.
  function allocationFailed (e: unknown): never {
    if (e instanceof RangeErrorCtor && e.message === 'Array buffer allocation failed') {
      const alarm = run.alarm!
      alarm('ALLOCATION_FAILED', '', '')
    }
    throw e
  }
  // A wrapper constructor that stands where the original stood (same prototype object, statics
  // and [[Prototype]]), so instanceof, species and subclassing keep working.
  function standIn (original: Ctor & { name: string, length: number }, wrapper: AnyFn): void {
    const statics = getOwnPropertyDescriptors(original) as Record<PropertyKey, PropertyDescriptor>
    const keys = ownKeys(statics)
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]
      if (key !== 'prototype' && key !== 'name' && key !== 'length') defineProperty(wrapper, key, statics[key])
    }
    defineProperty(wrapper, 'prototype', { value: original.prototype, writable: false, enumerable: false, configurable: false })
    defineProperty(wrapper, 'name', { value: original.name, configurable: true })
    defineProperty(wrapper, 'length', { value: original.length, configurable: true })
    setPrototypeOf(wrapper, getPrototypeOf(original))
    hide(original.prototype!, 'constructor', wrapper)
    hide(G, original.name, wrapper)
  }
  // Only primitives reach the original constructor inside the try, so any RangeError caught
  // there was raised by V8's allocator, never by tenant code (a valueOf, a Proxy new.target).
  function instanceFor (original: Ctor, args: unknown[], newTarget: { prototype?: unknown } | undefined, wrapper: AnyFn): object {
    const proto = newTarget === undefined || newTarget === wrapper ? undefined : newTarget.prototype
    let made: object
    try { made = construct(original as unknown as new (...a: unknown[]) => object, args) } catch (e) { allocationFailed(e) }
    if (proto !== undefined && proto !== null && (typeof proto === 'object' || typeof proto === 'function')) setPrototypeOf(made, proto)
    return made
  }

  const OriginalArrayBuffer = ArrayBuffer
  const reservations = new WeakMapCtor<object, object>()
  const SafeArrayBuffer = function ArrayBuffer (length?: unknown, options?: unknown): unknown {
    const target = new.target as { prototype?: unknown } | undefined
    if (target === undefined) return apply(OriginalArrayBuffer as unknown as AnyFn, undefined, [])
    const len = length === undefined ? 0 : NumberCtor(length)
    const max = options !== null && typeof options === 'object' ? (options as { maxByteLength?: unknown }).maxByteLength : undefined
    if (max === undefined) return instanceFor(OriginalArrayBuffer, [len], target, SafeArrayBuffer)
    const maxLen = NumberCtor(max)
    if (!(maxLen <= run.memBytes)) allocationFailed(new RangeErrorCtor('Array buffer allocation failed'))
    // Reserve the most it may grow to in isolated-vm's own accounting, with a buffer that is
    // never written (its pages never become resident) and lives exactly as long as this one.
    const reserve = instanceFor(OriginalArrayBuffer, [maxLen], undefined, SafeArrayBuffer)
    const made = instanceFor(OriginalArrayBuffer, [len, { maxByteLength: maxLen }], target, SafeArrayBuffer)
    apply(weakSet, reservations, [made, reserve])
    return made
  } as AnyFn
  standIn(OriginalArrayBuffer, SafeArrayBuffer)
  const TYPED = ['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array',
    'Uint32Array', 'Float16Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array']
  for (let i = 0; i < TYPED.length; i++) {
    const Original = G[TYPED[i]] as (Ctor & { name: string, length: number }) | undefined
    if (typeof Original !== 'function') continue
    const Safe = function (...args: unknown[]): unknown {
      const target = new.target as { prototype?: unknown } | undefined
      if (target === undefined) return apply(Original as unknown as AnyFn, undefined, [])
      // A length allocates here; buffers, arrays and iterables go through (their growth is heap).
      if (typeof args[0] === 'number') return instanceFor(Original, [args[0]], target, Safe)
      return construct(Original as unknown as new (...a: unknown[]) => object, args, target as unknown as new () => object)
    } as AnyFn
    standIn(Original, Safe)
  }

  // Methods keep their receiver (not bound like expose), so they are plain functions.
  function replaceMethod (proto: object, name: string, fn: AnyFn): void {
    defineProperty(fn, 'name', { value: name, configurable: true })
    hide(proto, name, fn)
  }
  function limitString (name: 'repeat' | 'padStart' | 'padEnd', sizeOf: (s: string, arg: unknown) => number): void {
    const original = String.prototype[name] as AnyFn
    replaceMethod(String.prototype, name, function (a, b) {
      const s = StringCtor(this)
      const size = sizeOf(s, a)
      if (size > run.memBytes) overMemory('a string of ' + StringCtor(size) + ' characters')
      return apply(original, s, [a, b])
    })
  }
  limitString('repeat', function (s, count) { return s.length * NumberCtor(count) })
  limitString('padStart', function (s, to) { return NumberCtor(to) })
  limitString('padEnd', function (s, to) { return NumberCtor(to) })
  const fill = Array.prototype.fill as AnyFn
  replaceMethod(Array.prototype, 'fill', function (value, start, end) {
    // Filling a huge sparse array allocates it whole in one builtin that V8 cannot interrupt.
    if (isArray(this) && this.length * 8 > run.memBytes) overMemory('an array of ' + StringCtor(this.length) + ' elements')
    return apply(fill, this, [value, start, end])
  })
}
