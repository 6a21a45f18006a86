import type ivm from 'isolated-vm'

/**
 * The largest isolate heap (V8 used heap plus external memory, e.g. ArrayBuffers) seen during
 * one run. V8 keeps no peak of the used heap, so it is sampled: at the start, on the runner's
 * CPU sampling tick, and at the end. The statistics are read without blocking the runner (an
 * asynchronous isolated-vm task, answered when the isolate next yields), so a spike that is
 * collected again before any sample sees it is missed: the figure is a sampled peak.
 */
export class HeapPeak {
  private peak = 0
  private inFlight = false

  sample (isolate: ivm.Isolate): void {
    if (this.inFlight) return
    this.inFlight = true
    let stats
    try { stats = isolate.getHeapStatistics() } catch { this.inFlight = false; return }
    stats.then((heap) => { this.seen(heap.used_heap_size + heap.externally_allocated_size) }, () => {})
      .finally(() => { this.inFlight = false })
  }

  seen (bytes: number): void {
    if (bytes > this.peak) this.peak = bytes
  }

  get bytes (): number { return this.peak }
}
