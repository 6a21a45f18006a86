// npm run bench:suite [-- SCRIPT]: the CPU and wall time of one npm script (default `test`, the
// embedded suite). Target (issue 26): the embedded `npm test` within 300 s on a quiet 2-core
// machine. CPU seconds are what the run itself costs, whatever else the machine is doing; the
// wall time is only comparable on a quiet machine.
//
// The CPU is that of every process the script starts and waits for (tap, the test files, their
// runner processes, Chromium, tsc...), which Linux counts for this process once its child has
// ended: /proc/self/stat's cutime and cstime. Linux only.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { availableParallelism, loadavg } from 'node:os'

const TARGET_WALL_SECONDS = 300
const script = process.argv[2] ?? 'test'
// Clock ticks: 100 a second on Linux (sysconf(_SC_CLK_TCK)).
const TICKS = 100

function childrenCpuSeconds (): number {
  const stat = readFileSync('/proc/self/stat', 'utf8')
  // Fields after the command name, which is in parentheses and may hold spaces: state is the
  // first of them, cutime and cstime the 14th and 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[13]) + Number(fields[14])) / TICKS
}

const before = childrenCpuSeconds()
const started = performance.now()
const load = loadavg()[0]
const child = spawn('npm', ['run', script], { stdio: 'inherit' })
const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
const wall = (performance.now() - started) / 1000
const cpu = childrenCpuSeconds() - before
const cores = availableParallelism()

console.log(`\nnpm run ${script}: exit ${String(code)}`)
console.log(`  CPU ${cpu.toFixed(0)} s (user + sys of every process it waited for), wall ${wall.toFixed(0)} s, ${cores} cores, load ${load.toFixed(1)} at the start`)
console.log(`  CPU / cores ${(cpu / cores).toFixed(0)} s: the wall time of a quiet machine kept busy throughout (the floor)`)
console.log(`  cores busy ${(cpu / (wall * cores) * 100).toFixed(0)} % of the wall time`)
if (script === 'test') {
  console.log(`  wall / target ${(wall / TARGET_WALL_SECONDS).toFixed(2)} (target <= 1.00 on a quiet ${cores}-core machine: ${wall <= TARGET_WALL_SECONDS ? 'met' : 'not met'}${load > 1 ? '; the machine was not quiet' : ''})`)
}
process.exitCode = code ?? 1
