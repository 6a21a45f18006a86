// Source of the code that prepares every context before any tenant code runs in it. Over 250
// lines because it is one script: it must run as a single closure inside the isolate.
//
// It is compiled once per isolate and run once per fresh context (while the context is pre-warmed,
// off the request path). Its completion value is `[init, deliver]`, reachable only through
// host-side References: `init(send, alarm, configJson, source)` compiles and starts the tenant's code,
// `deliver(id, kind, data)` settles a pending callTool.
//
// Rules this code keeps, because tenant code shares the realm with it:
// - strict mode everywhere: V8 hides strict frames' functions from CallSite.getFunction() and
//   `.caller`, so tenant code can never obtain `send`, `init` or `deliver` from a stack trace;
// - every built-in it needs is captured before tenant code runs, and called via Reflect.apply,
//   so patched prototypes cannot intercept it (patching only hurts the patching script);
// - host functions are called directly on closure variables (no .call/.apply lookups);
// - only strings and numbers go to the host, only strings come back (parsed here).
export const BOOTSTRAP_SOURCE = String.raw`(function () {
  'use strict'
  const G = globalThis
  const defineProperty = Object.defineProperty
  const getPrototypeOf = Object.getPrototypeOf
  const deleteProperty = Reflect.deleteProperty
  const apply = Reflect.apply
  const stringify = JSON.stringify
  const parse = JSON.parse
  const PromiseCtor = Promise
  const promiseThen = Promise.prototype.then
  const ErrorCtor = Error
  const EvalErrorCtor = EvalError
  const StringCtor = String
  const MapCtor = Map
  const mapGet = Map.prototype.get
  const mapSet = Map.prototype.set
  const mapDelete = Map.prototype.delete
  const WeakMapCtor = WeakMap
  const weakGet = WeakMap.prototype.get
  const weakSet = WeakMap.prototype.set
  const strSlice = String.prototype.slice
  const construct = Reflect.construct
  const setPrototypeOf = Object.setPrototypeOf
  const getOwnPropertyDescriptors = Object.getOwnPropertyDescriptors
  const ownKeys = Reflect.ownKeys
  const isArray = Array.isArray
  const NumberCtor = Number
  const RangeErrorCtor = RangeError
  const fnBind = Function.prototype.bind
  const asyncProto = getPrototypeOf(async function () {})
  const AsyncFunction = asyncProto.constructor

  function hide (obj, key, value) {
    defineProperty(obj, key, { value, writable: true, enumerable: false, configurable: true })
  }
  // Exposed functions are bound: their toString shows no source and they have no prototype.
  function expose (fn, name) {
    const bound = apply(fnBind, fn, [undefined])
    defineProperty(bound, 'name', { value: name, configurable: true })
    return bound
  }

  // 1. No code generation from strings. isolated-vm lets contexts compile strings, so every
  //    way to reach eval or a Function constructor is replaced by a function that refuses.
  function refuse () {
    throw new EvalErrorCtor('Code generation from strings is disabled in the enclave')
  }
  function denier (proto, name) {
    const deny = function () { refuse() }
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
  // Shared memory, wasm and finalizer callbacks (which run after the execution) are not offered.
  deleteProperty(G, 'WebAssembly')
  deleteProperty(G, 'SharedArrayBuffer')
  deleteProperty(G, 'Atomics')
  deleteProperty(G, 'FinalizationRegistry')

  // Set by init().
  let send = null
  let alarm = null
  let maxLog = 0
  let maxOut = 0
  let maxCalls = 0
  let maxArgs = 0
  let memBytes = 0
  let calls = 0
  let aborted = null
  let live = false
  let flushQueued = false
  const settledPromise = new PromiseCtor(function (resolve) { resolve() })

  // 2. Console, captured into JSON entries that travel with the next tool call or the result.
  let logBuf = ''
  let logLen = 0
  function takeLogs () {
    if (logBuf === '') return ''
    const out = '[' + logBuf + ']'
    logBuf = ''
    return out
  }
  const ABORT_NAMES = { MAX_TOOL_CALLS: 'ToolCallLimitError', OUTPUT_LIMIT_EXCEEDED: 'OutputLimitError', MEMORY_LIMIT_EXCEEDED: 'MemoryLimitError' }
  function abortError () {
    const e = new ErrorCtor(aborted.message)
    hide(e, 'name', ABORT_NAMES[aborted.code])
    hide(e, 'code', aborted.code)
    hide(e, 'stack', e.name + ': ' + aborted.message)
    return e
  }
  // An uncatchable limit: tell the host at once (a synchronous call: queued messages would wait
  // for the end of this task, which a catching loop never reaches); it ends the execution and
  // disposes the isolate. The throw only unwinds until then.
  // detail: the tool name of the call over the limit (audited like any refused call).
  function trip (code, message, detail) {
    if (aborted === null) {
      aborted = { code, message }
      alarm(code, message, takeLogs(), detail === undefined ? '' : detail)
    }
    throw abortError()
  }
  function fmt (v) {
    const t = typeof v
    if (t === 'string') return v
    if (v === null) return 'null'
    if (t !== 'object' && t !== 'function') return StringCtor(v)
    try {
      if (t === 'function') return '[Function]'
      if (v instanceof ErrorCtor) return StringCtor(v.name) + ': ' + StringCtor(v.message)
      const s = stringify(v)
      return s === undefined ? StringCtor(v) : s
    } catch (e) {
      return '[object]'
    }
  }
  function emit (level, args) {
    if (aborted !== null) throw abortError()
    let msg = ''
    for (let i = 0; i < args.length; i++) msg = i === 0 ? fmt(args[i]) : msg + ' ' + fmt(args[i])
    if (msg.length > maxLog) trip('OUTPUT_LIMIT_EXCEEDED', 'Console output exceeded ' + maxLog + ' bytes')
    const entry = '{"level":"' + level + '","message":' + stringify(msg) + '}'
    // UTF-16 length never exceeds UTF-8 bytes; the host recounts exactly.
    logLen += entry.length + 1
    if (logLen > maxLog) trip('OUTPUT_LIMIT_EXCEEDED', 'Console output exceeded ' + maxLog + ' bytes')
    logBuf = logBuf === '' ? entry : logBuf + ',' + entry
    // A live run reports its console once per task (a microtask after the code that logged), so
    // a burst of lines costs one message, and lines logged before an await arrive before it.
    if (live && !flushQueued) {
      flushQueued = true
      try { apply(promiseThen, settledPromise, [flushLogs]) } catch (e) { flushLogs() }
    }
  }
  function flushLogs () {
    flushQueued = false
    if (aborted === null && logBuf !== '') send('L', takeLogs())
  }
  const consoleObject = {}
  function method (name, target) {
    hide(consoleObject, name, expose(function (...args) { emit(target, args) }, name))
  }
  method('log', 'log')
  method('info', 'info')
  method('warn', 'warn')
  method('error', 'error')
  method('debug', 'debug')
  method('trace', 'debug')
  method('dir', 'log')
  method('table', 'log')
  hide(consoleObject, 'assert', expose(function (cond, ...args) {
    if (!cond) emit('error', args.length === 0 ? ['Assertion failed'] : args)
  }, 'assert'))
  hide(G, 'console', consoleObject)

  // 3. callTool: a JSON string goes out, a JSON string comes back.
  const pending = new MapCtor()
  const toolErrors = new WeakMapCtor()
  let seq = 0
  function toolError (code, message) {
    const e = new ErrorCtor(message)
    hide(e, 'name', 'ToolError')
    defineProperty(e, 'code', { value: code, writable: true, enumerable: true, configurable: true })
    hide(e, 'stack', 'ToolError: ' + message)
    apply(weakSet, toolErrors, [e, { code, message }])
    return e
  }
  function describeThrown (e) {
    try {
      return typeof e === 'object' && e !== null && typeof e.message === 'string' ? e.message : StringCtor(e)
    } catch (_) {
      return 'unknown error'
    }
  }
  function callTool (name, args) {
    return new PromiseCtor(function (resolve, reject) {
      if (aborted !== null) { reject(abortError()); return }
      if (send === null) { reject(toolError('TOOL_ERROR', 'callTool is not available')); return }
      if (++calls > maxCalls) trip('MAX_TOOL_CALLS', 'Tool call limit exceeded: at most ' + maxCalls + ' calls per execution', typeof name === 'string' ? name : '')
      // Refused here, told to the host all the same: every call is audited.
      if (typeof name !== 'string') { send('F', 'TOOL_ERROR', '', 0, takeLogs()); reject(toolError('TOOL_ERROR', 'Tool name must be a string')); return }
      let json = ''
      if (args !== undefined) {
        try {
          json = stringify(args)
        } catch (e) {
          send('F', 'TOOL_ERROR', name, 0, takeLogs())
          reject(toolError('TOOL_ERROR', 'Tool arguments are not JSON-serialisable: ' + describeThrown(e)))
          return
        }
        if (json === undefined) { send('F', 'TOOL_ERROR', name, 0, takeLogs()); reject(toolError('TOOL_ERROR', 'Tool arguments are not JSON-serialisable')); return }
        // Measured here, before anything is copied out of the isolate (UTF-8 never has fewer
        // bytes than UTF-16 units; the host counts the exact bytes of what passes).
        if (json.length > maxArgs) { send('F', 'TOOL_ERROR', name, json.length, takeLogs()); reject(toolError('TOOL_ERROR', 'Tool arguments exceed ' + maxArgs + ' bytes')); return }
      }
      if (aborted !== null) { reject(abortError()); return }
      const id = ++seq
      apply(mapSet, pending, [id, { resolve, reject }])
      send('C', id, name, json, takeLogs())
    })
  }
  hide(G, 'callTool', expose(callTool, 'callTool'))

  function deliver (id, kind, data) {
    const entry = apply(mapGet, pending, [id])
    if (entry === undefined) return
    apply(mapDelete, pending, [id])
    if (kind === 'v') {
      let value
      if (data !== '') {
        try { value = parse(data) } catch (_) { entry.reject(toolError('TOOL_ERROR', 'Tool result is not valid JSON')); return }
      }
      entry.resolve(value)
      return
    }
    let code = 'TOOL_ERROR'
    let message = 'Tool call failed'
    try {
      const err = parse(data)
      if (typeof err.code === 'string') code = err.code
      if (typeof err.message === 'string') message = err.message
    } catch (_) {}
    entry.reject(toolError(code, message))
  }


  // 4. Memory. isolated-vm counts the heap and ordinary ArrayBuffers against the limit, but not
  //    the pages a resizable ArrayBuffer commits as it grows, and V8 lets one huge string through
  //    before the limit is checked. Those paths are bounded here; the host also checks the total
  //    after the run, and the supervisor watches each runner's RSS.
  //    A refused allocation is an uncatchable alarm raised from here: a script can throw an error
  //    that looks like an allocation failure, but cannot make the host report a limit.
  function overMemory (what) {
    trip('MEMORY_LIMIT_EXCEEDED', 'Memory limit of ' + (memBytes / 1048576) + ' MB exceeded: ' + what)
  }
  // V8 refused an ArrayBuffer: the script may catch the RangeError and go on with less, but if it
  // ends with that error the host, told here, reports MEMORY_LIMIT_EXCEEDED.
  function allocationFailed (e) {
    if (e instanceof RangeErrorCtor && e.message === 'Array buffer allocation failed') alarm('ALLOCATION_FAILED', '', '')
    throw e
  }
  // A wrapper constructor that stands where the original stood (same prototype object, statics
  // and [[Prototype]]), so instanceof, species and subclassing keep working.
  function standIn (original, wrapper) {
    const statics = getOwnPropertyDescriptors(original)
    const keys = ownKeys(statics)
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]
      if (k !== 'prototype' && k !== 'name' && k !== 'length') defineProperty(wrapper, k, statics[k])
    }
    defineProperty(wrapper, 'prototype', { value: original.prototype, writable: false, enumerable: false, configurable: false })
    defineProperty(wrapper, 'name', { value: original.name, configurable: true })
    defineProperty(wrapper, 'length', { value: original.length, configurable: true })
    setPrototypeOf(wrapper, getPrototypeOf(original))
    hide(original.prototype, 'constructor', wrapper)
    hide(G, original.name, wrapper)
  }
  // Only primitives reach the original constructor inside the try, so any RangeError caught
  // there was raised by V8's allocator, never by tenant code (a valueOf, a Proxy new.target).
  function instanceFor (original, args, newTarget, wrapper) {
    const proto = newTarget === undefined || newTarget === wrapper ? undefined : newTarget.prototype
    let made
    try { made = construct(original, args) } catch (e) { allocationFailed(e) }
    if (proto !== undefined && proto !== null && (typeof proto === 'object' || typeof proto === 'function')) setPrototypeOf(made, proto)
    return made
  }
  const OriginalArrayBuffer = ArrayBuffer
  const reservations = new WeakMapCtor()
  const SafeArrayBuffer = function ArrayBuffer (length, options) {
    if (new.target === undefined) return apply(OriginalArrayBuffer, undefined, [])
    const len = length === undefined ? 0 : NumberCtor(length)
    const max = options !== null && typeof options === 'object' ? options.maxByteLength : undefined
    if (max === undefined) return instanceFor(OriginalArrayBuffer, [len], new.target, SafeArrayBuffer)
    const maxLen = NumberCtor(max)
    if (!(maxLen <= memBytes)) allocationFailed(new RangeErrorCtor('Array buffer allocation failed'))
    // Reserve the most it may grow to in isolated-vm's own accounting, with a buffer that is
    // never written (its pages never become resident) and lives exactly as long as this one.
    const reserve = instanceFor(OriginalArrayBuffer, [maxLen], undefined, SafeArrayBuffer)
    const made = instanceFor(OriginalArrayBuffer, [len, { maxByteLength: maxLen }], new.target, SafeArrayBuffer)
    apply(weakSet, reservations, [made, reserve])
    return made
  }
  standIn(OriginalArrayBuffer, SafeArrayBuffer)
  const TYPED = ['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array',
    'Uint32Array', 'Float16Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array']
  for (let i = 0; i < TYPED.length; i++) {
    const Original = G[TYPED[i]]
    if (typeof Original !== 'function') continue
    const Safe = function (...args) {
      if (new.target === undefined) return apply(Original, undefined, [])
      // A length allocates here; buffers, arrays and iterables go through (their growth is heap).
      if (typeof args[0] === 'number') return instanceFor(Original, [args[0]], new.target, Safe)
      return construct(Original, args, new.target)
    }
    standIn(Original, Safe)
  }
  // Methods keep their receiver (not bound like expose), so they are plain functions.
  function replaceMethod (proto, name, fn) {
    defineProperty(fn, 'name', { value: name, configurable: true })
    hide(proto, name, fn)
  }
  function limitString (name, sizeOf) {
    const original = String.prototype[name]
    replaceMethod(String.prototype, name, function (a, b) {
      const s = StringCtor(this)
      const size = sizeOf(s, a)
      if (size > memBytes) overMemory('a string of ' + StringCtor(size) + ' characters')
      return apply(original, s, [a, b])
    })
  }
  limitString('repeat', function (s, count) { return s.length * NumberCtor(count) })
  limitString('padStart', function (s, to) { return NumberCtor(to) })
  limitString('padEnd', function (s, to) { return NumberCtor(to) })
  const fill = Array.prototype.fill
  replaceMethod(Array.prototype, 'fill', function (value, start, end) {
    // Filling a huge sparse array allocates it whole in one builtin that V8 cannot interrupt.
    if (isArray(this) && this.length * 8 > memBytes) overMemory('an array of ' + StringCtor(this.length) + ' elements')
    return apply(fill, this, [value, start, end])
  })

  // 5. The result: built as JSON text here, so no tenant object ever leaves the isolate.
  function errorJson (name, code, message) {
    return '{"name":' + stringify(apply(strSlice, name, [0, 200])) + ',"code":"' + code +
      '","message":' + stringify(apply(strSlice, message, [0, 8192])) + '}'
  }
  function describe (e) {
    const known = apply(weakGet, toolErrors, [e])
    if (known !== undefined) return errorJson('ToolError', known.code, known.message)
    let name = 'Error'
    let message
    try {
      if ((typeof e === 'object' && e !== null) || typeof e === 'function') {
        const n = e.name
        if (typeof n === 'string' && n !== '') name = n
        const m = e.message
        message = typeof m === 'string' ? m : StringCtor(e)
      } else {
        message = StringCtor(e)
      }
    } catch (_) {
      message = 'Uncaught exception that could not be described'
    }
    return errorJson(name, 'EXECUTION_ERROR', message)
  }
  function succeed (value) {
    if (aborted !== null) return
    let json = ''
    if (value !== undefined) {
      try {
        json = stringify(value)
      } catch (e) {
        if (aborted !== null) return
        send('R', 'e', errorJson('TypeError', 'EXECUTION_ERROR', 'Return value is not JSON-serialisable: ' + describeThrown(e)), takeLogs())
        return
      }
      if (aborted !== null) return
      if (json === undefined) {
        send('R', 'e', errorJson('TypeError', 'EXECUTION_ERROR', 'Return value is not JSON-serialisable (' + typeof value + ')'), takeLogs())
        return
      }
      if (json.length > maxOut) { send('R', 'o', StringCtor(json.length), takeLogs()); return }
    }
    send('R', 'v', json, takeLogs())
  }
  function fail (e) {
    if (aborted !== null) return
    let json
    try { json = describe(e) } catch (_) { json = errorJson('Error', 'EXECUTION_ERROR', 'Uncaught exception') }
    send('R', 'e', json, takeLogs())
  }

  function init (sendFn, alarmFn, configJson, source) {
    if (send !== null) throw new ErrorCtor('init runs once')
    send = sendFn
    alarm = alarmFn
    const config = parse(configJson)
    maxLog = config.maxLog
    maxOut = config.maxOut
    maxCalls = config.maxCalls
    maxArgs = config.maxArgs
    memBytes = config.memBytes
    live = config.live === true
    let main
    try {
      // Parsed as a function body on its own: the code cannot close the function early.
      main = AsyncFunction(source)
    } catch (e) {
      send('R', 'x', errorJson(typeof e.name === 'string' ? e.name : 'SyntaxError', 'VALIDATION_ERROR', describeThrown(e)), '')
      return
    }
    let p
    try { p = main() } catch (e) { fail(e); return }
    apply(promiseThen, p, [succeed, fail])
  }
  return [init, deliver]
})()`
