// A clean-up that may be called from several paths (finally, undo, a second release) but runs once.
export function once(fn: () => Promise<void>): () => Promise<void> {
  let done = false
  return async () => {
    if (done) return
    done = true
    await fn()
  }
}
