// One supervised runner child: spawn, pipe, stderr watch, exit, and what the supervisor may
// read of it from outside (its verified pid and resident memory).
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { constants } from 'node:os'
import type { PoolConfig, ToMain, ToRunner } from '../protocol/messages.ts'
import { launchSpec, type RunnerProtections } from './runner-launch.ts'
import { LineChannel } from '../protocol/line-channel.ts'

// Output that says the process died of memory exhaustion (V8, isolated-vm, our own marker).
const OOM_TEXT = /out of memory|heap limit|allocation failed|JavaScript heap|memory limit|ENCLAVE_CATASTROPHIC/i
const CATASTROPHIC = /^ENCLAVE_CATASTROPHIC (\S+) (.*)$/
const PAGE_SIZE = 4096

export interface RunnerEvents<Run> {
  message: (runner: RunnerProcess<Run>, msg: ToMain) => void
  exit: (runner: RunnerProcess<Run>, code: number | null, signal: string | null) => void
  stderr: (runner: RunnerProcess<Run>, line: string) => void
  /** The runner broke the protocol (a line over its bound); it has been killed. */
  violation: (runner: RunnerProcess<Run>, reason: string) => void
}

export class RunnerProcess<Run = unknown> {
  readonly index: number
  readonly child: ChildProcess
  readonly spawnedAt = performance.now()
  readyAt: number | undefined
  ready = false
  exited = false
  /** Out of service: takes no new runs, is killed once its runs are done (or at once). */
  retired = false
  /** The pid the runner reported, once checked to be the child or its descendant. */
  runnerPid: number | undefined
  /** Executions sent to it and not yet done, by wire id. */
  readonly inFlight = new Map<string, Run>()
  /** Executions that are done but whose isolate was still running: until 'freed' or the exit. */
  readonly draining = new Map<string, Run>()
  /** Runs that a catastrophic isolate error named, by wire id. */
  readonly catastrophic = new Map<string, string>()
  /** Pings sent and not yet answered, by number: what each pong must match. */
  readonly pings = new Map<number, { resolve: () => void, reject: (err: Error) => void }>()
  private pingSeq = 0
  private stderrTail = ''
  private stderrPartial = ''
  private readonly channel: LineChannel<ToMain, ToRunner>
  private readonly exitPromise: Promise<void>

  constructor (index: number, config: PoolConfig, protections: RunnerProtections, maxLine: () => number, events: RunnerEvents<Run>) {
    this.index = index
    const launch = launchSpec(JSON.stringify(config), protections)
    this.child = spawn(launch.command, launch.args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], env: launch.env, uid: launch.uid, gid: launch.gid })
    const pipe = this.child.stdio[3] as Socket
    pipe.on('error', () => { /* the exit handler reports */ })
    this.channel = new LineChannel<ToMain, ToRunner>(pipe, (msg) => {
      if (typeof msg === 'object' && msg !== null && msg.t === 'ready' && !this.ready) {
        this.ready = true
        this.readyAt = performance.now()
        this.runnerPid = this.verifyPid(msg.pid)
      }
      events.message(this, msg)
    }, undefined, maxLine, () => {
      this.kill('SIGKILL')
      events.violation(this, 'a message over its size bound')
    })
    const stderr = this.child.stderr!
    stderr.setEncoding('utf8')
    stderr.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-16384)
      const lines = (this.stderrPartial + chunk).split('\n')
      this.stderrPartial = (lines.pop() ?? '').slice(-16384)
      for (const line of lines) {
        const m = CATASTROPHIC.exec(line)
        if (m !== null) this.catastrophic.set(m[1], m[2])
        else if (line.trim() !== '') events.stderr(this, line)
      }
    })
    this.exitPromise = new Promise((resolve) => {
      let reported = false
      let fallback: NodeJS.Timeout | undefined
      const report = (code: number | null, signal: string | null): void => {
        if (reported) return
        reported = true
        // A sandbox wrapper (bubblewrap) exits with 128 + the signal that killed the runner.
        if (signal === null && code !== null && code > 128 && this.runnerPid !== undefined && this.runnerPid !== this.child.pid) {
          const number = code - 128
          signal = Object.entries(constants.signals).find(([, n]) => n === number)?.[0] ?? null
          if (signal !== null) code = null
        }
        clearTimeout(fallback)
        this.exited = true
        this.ready = false
        for (const ping of this.pings.values()) ping.reject(new Error('The runner exited'))
        this.pings.clear()
        events.exit(this, code, signal)
        resolve()
      }
      this.child.once('exit', (code, signal) => {
        this.exited = true
        this.ready = false
        // 'close' follows once the last stderr bytes (which say why it died) are read.
        fallback = setTimeout(() => report(code, signal), 500)
      })
      this.child.once('close', (code: number | null, signal: string | null) => report(code, signal))
      this.child.once('error', () => report(null, null))
    })
  }

  get pid (): number | undefined { return this.child.pid }

  /** Whether its last output shows it died of memory exhaustion. */
  get outOfMemory (): boolean { return OOM_TEXT.test(this.stderrTail) }

  /** The last reading of rssBytes(): what the memory watch saw when it stopped the runner. */
  lastRssBytes: number | undefined

  /** Resident memory of the runner process, from /proc (undefined where that cannot be read). */
  rssBytes (): number | undefined {
    if (this.runnerPid === undefined || this.exited) return undefined
    try {
      this.lastRssBytes = Number(readFileSync(`/proc/${this.runnerPid}/statm`, 'utf8').split(' ')[1]) * PAGE_SIZE
      return this.lastRssBytes
    } catch { return undefined }
  }

  send (msg: ToRunner): void {
    if (!this.exited) this.channel.send(msg)
  }

  /** One ping → pong round trip over the pipe, in ms (no isolate: the floor of a tool call's hop). */
  async ping (): Promise<number> {
    const n = this.pingSeq = (this.pingSeq + 1) % 2 ** 31
    const t0 = performance.now()
    await new Promise<void>((resolve, reject) => {
      if (this.exited) { reject(new Error('The runner has exited')); return }
      this.pings.set(n, { resolve, reject })
      this.channel.send({ t: 'ping', n })
    })
    return performance.now() - t0
  }

  /** A pong the supervisor checked (its number is one of ours). */
  onPong (n: number): void {
    const ping = this.pings.get(n)
    this.pings.delete(n)
    ping?.resolve()
  }

  kill (signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.exited) return
    this.child.kill(signal)
    // A sandbox wrapper passes the signal on by dying; the runner itself is killed too.
    if (this.runnerPid !== undefined && this.runnerPid !== this.child.pid) {
      try { process.kill(this.runnerPid, signal) } catch { /* gone */ }
    }
  }

  /** Close the pipe (the runner exits on its own), SIGKILL after graceMs. */
  async stop (graceMs = 2000): Promise<void> {
    if (!this.exited) {
      (this.child.stdio[3] as Socket).end()
      const timer = setTimeout(() => this.kill('SIGKILL'), graceMs)
      await this.exitPromise
      clearTimeout(timer)
    }
    await this.exitPromise
  }

  // A runner only says what its pid is; it is believed when /proc shows it below our child.
  private verifyPid (pid: unknown): number | undefined {
    const child = this.child.pid
    if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || child === undefined) return undefined
    if (pid === child) return pid
    let current = pid
    for (let depth = 0; depth < 4; depth++) {
      let parent: number
      try {
        parent = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${current}/status`, 'utf8'))?.[1])
      } catch { return undefined }
      if (parent === child) return pid
      current = parent
    }
    return undefined
  }
}
