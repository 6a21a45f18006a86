// The built-ins the bootstrap needs, captured before any tenant code runs: tenant code shares the
// realm and may patch prototypes afterwards, which then only hurts the patching script.
//
// Every function in runner/isolate/ runs inside the isolate, not here: bootstrap.ts turns each
// into source with Function.prototype.toString. So they use only their parameters and the
// isolate's globals, never anything imported (dependency-cruiser lets this folder import types only).

export type Intrinsics = ReturnType<typeof captureIntrinsics>

export function captureIntrinsics () {
  const asyncProto = Object.getPrototypeOf(async function () {}) as { constructor: unknown }
  const defineProperty = Object.defineProperty
  const apply = Reflect.apply
  const fnBind = Function.prototype.bind

  function hide (obj: object, key: PropertyKey, value: unknown): void {
    defineProperty(obj, key, { value, writable: true, enumerable: false, configurable: true })
  }
  // Exposed functions are bound: their toString shows no source and they have no prototype.
  function expose<F extends (...args: never[]) => unknown> (fn: F, name: string): F {
    const bound = apply(fnBind, fn, [undefined]) as F
    defineProperty(bound, 'name', { value: name, configurable: true })
    return bound
  }

  return {
    G: globalThis as typeof globalThis & Record<string, unknown>,
    hide,
    expose,
    defineProperty,
    apply,
    fnBind,
    asyncProto,
    // Taken before the code-generation lock replaces the constructor every async function shows.
    AsyncFunction: asyncProto.constructor as (source: string) => () => Promise<unknown>,
    getPrototypeOf: Object.getPrototypeOf,
    setPrototypeOf: Object.setPrototypeOf,
    getOwnPropertyDescriptors: Object.getOwnPropertyDescriptors,
    deleteProperty: Reflect.deleteProperty,
    construct: Reflect.construct,
    ownKeys: Reflect.ownKeys,
    stringify: JSON.stringify,
    parse: JSON.parse,
    isArray: Array.isArray,
    PromiseCtor: Promise,
    promiseThen: Promise.prototype.then,
    ErrorCtor: Error,
    EvalErrorCtor: EvalError,
    RangeErrorCtor: RangeError,
    StringCtor: String,
    NumberCtor: Number,
    strSlice: String.prototype.slice,
    MapCtor: Map,
    mapGet: Map.prototype.get,
    mapSet: Map.prototype.set,
    mapDelete: Map.prototype.delete,
    WeakMapCtor: WeakMap,
    weakGet: WeakMap.prototype.get,
    weakSet: WeakMap.prototype.set
  }
}
