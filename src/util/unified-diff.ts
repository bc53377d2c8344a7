/**
 * A unified diff (the `diff` library: Myers, 3 lines of context, @@ hunks as GNU diff numbers them); empty for equal text.
 * The library loads on the first diff: commands that never show one start without it.
 */
export async function unifiedDiff(a: string, b: string, from = 'a', to = 'b'): Promise<string[]> {
  if (a === b) return []
  const { structuredPatch } = await import('diff')
  const patch = structuredPatch(from, to, a ? a.replace(/\n?$/, '\n') : '', b.replace(/\n?$/, '\n'), undefined, undefined, { context: 3 })
  return [`--- ${from}`, `+++ ${to}`, ...patch.hunks.flatMap((h) => [`@@ -${h.oldLines ? h.oldStart : h.oldStart - 1},${h.oldLines} +${h.newLines ? h.newStart : h.newStart - 1},${h.newLines} @@`, ...h.lines])]
}
