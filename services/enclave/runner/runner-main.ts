// Entry of a runner child process: isolates live here, never in the API process, so a script
// that takes V8 down takes down only this process, which the supervisor replaces.
import net from 'node:net'
import { IsolateRun } from './isolate-run.ts'
import type { PoolConfig, ToMain, ToRunner } from '../protocol/messages.ts'
import { IsolatePool } from './isolate-pool.ts'
import { LineChannel } from '../protocol/line-channel.ts'
import { moduleSnapshots } from './module-snapshots.ts'

// How often the runner reports each running execution's CPU time (the supervisor's fairness
// works from these samples).
const CPU_SAMPLE_MS = 20

const config = JSON.parse(process.argv[2] ?? '{}') as PoolConfig
const pool = new IsolatePool({
  maxIdlePerKey: config.maxIdlePerKey ?? 8,
  maxIdle: config.maxIdle ?? 32,
  idleTtlMs: config.idleTtlMs ?? 60_000,
  maxRunsPerIsolate: config.maxRunsPerIsolate ?? 1000
})
const runs = new Map<string, IsolateRun>()

// fd 3 is the pipe to the main process (see ../host/runner-process.ts).
const socket = new net.Socket({ fd: 3, readable: true, writable: true })
const channel = new LineChannel<ToRunner, ToMain>(socket, onMessage, (line) => {
  process.stderr.write(`enclave runner: bad message (${line.length} chars)\n`)
})
const send = (m: ToMain): void => channel.send(m)

let sampler: NodeJS.Timeout | undefined
function sampleCpu (): void {
  const samples: Array<[string, number]> = []
  for (const run of runs.values()) {
    const ms = run.cpuMs()
    run.sampleHeap()
    if (ms !== undefined) samples.push([run.id, Math.round(ms * 10) / 10])
  }
  if (samples.length > 0) send({ t: 'cpu', s: samples })
  if (runs.size === 0) { clearInterval(sampler); sampler = undefined }
}

// Snapshots of sandbox modules block this thread while V8 makes them (tens of ms each): only
// when no run is in this runner, one at a time, so a run that arrives meanwhile waits for one.
function makeSnapshotsWhileIdle (): void {
  if (runs.size === 0 && moduleSnapshots.makeOne()) setImmediate(makeSnapshotsWhileIdle)
}

function onMessage (msg: ToRunner): void {
  if (msg.t === 'run') {
    const run = new IsolateRun(msg, pool, send, () => {
      runs.delete(msg.id)
      if (runs.size === 0) setImmediate(makeSnapshotsWhileIdle)
    })
    runs.set(msg.id, run)
    sampler ??= setInterval(sampleCpu, CPU_SAMPLE_MS)
    run.start().catch((err: unknown) => {
      process.stderr.write(`enclave runner: run failed: ${err instanceof Error ? err.message : String(err)}\n`)
      run.abort('The runner failed to start the execution')
    })
  } else if (msg.t === 'ret') {
    runs.get(msg.id)?.onToolResult(msg)
  } else if (msg.t === 'cancel') {
    runs.get(msg.id)?.cancel()
  } else if (msg.t === 'ping') {
    send({ t: 'pong', n: msg.n })
  }
}

// The main process went away: nothing left to serve.
socket.on('close', () => process.exit(0))
socket.on('error', () => process.exit(0))

send({ t: 'ready', pid: process.pid })
