// Work a tool call owes once it is answered (its audit row, its metric), kept off the answer's
// path. The answer goes to the runner from a setImmediate (the line channel's flush), queued by
// the promise reactions that carry the result up; a nextTick runs once those reactions are all
// done, and the setImmediate it queues therefore runs right after the flush, in the same check
// phase: after the answer is written, and before the event loop reads anything more from the
// runner (the run's end, say), so a run's rows are still queued before its final result.
const pending: Array<() => void> = []

function drain (): void {
  for (const work of pending.splice(0)) {
    // Each piece only queues or counts; one that throws must not cost the others theirs.
    try { work() } catch { /* nothing to tell: the call was answered */ }
  }
}

function queueDrain (): void {
  setImmediate(drain)
}

/** Runs `work` once the answer now on its way to the runner has been written. */
export function afterAnswer (work: () => void): void {
  pending.push(work)
  if (pending.length === 1) process.nextTick(queueDrain)
}
