import { spawn, type ChildProcess } from 'node:child_process'
import type { Socket } from 'node:net'
import type { PoolConfig } from './isolate-pool.ts'
import type { ToMain, ToRunner } from './protocol.ts'
import { launchSpec } from './runner-launch.ts'
import { LineChannel } from './wire.ts'

// Output that says the process died of memory exhaustion (V8, isolated-vm, our own marker).
const OOM_TEXT = /out of memory|heap limit|allocation failed|JavaScript heap|memory limit|ENCLAVE_CATASTROPHIC/i
const CATASTROPHIC = /^ENCLAVE_CATASTROPHIC (\S+) (.*)$/

export interface RunnerEvents<Run> {
  message: (runner: RunnerProcess<Run>, msg: ToMain) => void
  exit: (runner: RunnerProcess<Run>, code: number | null, signal: string | null) => void
  stderr: (runner: RunnerProcess<Run>, line: string) => void
}

/** One supervised runner child: spawn, pipe, stderr watch, exit. */
export class RunnerProcess<Run = unknown> {
  readonly child: ChildProcess
  readonly spawnedAt = performance.now()
  readyAt: number | undefined
  ready = false
  exited = false
  /** Replaced already (unresponsive); its exit only ends its runs. */
  retired = false
  /** Executions sent to it and not yet done, by wire id. */
  readonly inFlight = new Map<string, Run>()
  /** Runs that a catastrophic isolate error named, by wire id. */
  readonly catastrophic = new Map<string, string>()
  private stderrTail = ''
  private stderrPartial = ''
  private readonly channel: LineChannel<ToMain, ToRunner>
  private readonly exitPromise: Promise<void>

  readonly index: number

  constructor (index: number, config: PoolConfig, events: RunnerEvents<Run>) {
    this.index = index
    const launch = launchSpec(JSON.stringify(config))
    this.child = spawn(launch.command, launch.args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], env: launch.env })
    const pipe = this.child.stdio[3] as Socket
    pipe.on('error', () => { /* the exit handler reports */ })
    this.channel = new LineChannel<ToMain, ToRunner>(pipe, (msg) => {
      if (msg.t === 'ready') { this.ready = true; this.readyAt = performance.now() }
      events.message(this, msg)
    })
    const stderr = this.child.stderr!
    stderr.setEncoding('utf8')
    stderr.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-16384)
      const lines = (this.stderrPartial + chunk).split('\n')
      this.stderrPartial = lines.pop() ?? ''
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
        clearTimeout(fallback)
        this.exited = true
        this.ready = false
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

  send (msg: ToRunner): void {
    if (!this.exited) this.channel.send(msg)
  }

  kill (signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.exited) this.child.kill(signal)
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
}
