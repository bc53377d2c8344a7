// The overlay renames with several rollback points (--keep): from every state a kill can leave
// between two renames, running the step again ends in the same place, nothing lost or doubled.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { vmName } from '../../src/name.js'
import { finishSwap, olderOverlay, olderOverlays, previousOverlay, promoteOverlay, pruneOverlays, rollbackPoints, switchOverlays, nextOverlay } from '../../src/ops/overlays.js'
import { statePaths, vmFiles, type VmFiles } from '../../src/repo.js'

let dir: string
let files: VmFiles
const put = (f: string, s: string) => writeFileSync(f, s)
const read = (f: string) => readFileSync(f, 'utf8')
/** File name → content, for the whole VM folder. */
const state = () => Object.fromEntries(readdirSync(files.dir).sort().map((f) => [f.replace(/old-\d+$/, 'old-N'), read(join(files.dir, f))]))

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fleet-overlays-'))
  files = vmFiles(statePaths(join(dir, 'repo'), dir), vmName('vm1'))
  mkdirSync(files.dir, { recursive: true })
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

describe('switchOverlays keeps the .previous it replaces as an older rollback point', () => {
  const start = () => {
    put(files.boot, 'v2')
    put(previousOverlay(files), 'v1')
    put(nextOverlay(files), 'v3')
  }
  const end = { 'boot.qcow2': 'v3', 'boot.qcow2.previous': 'v2', 'boot.qcow2.old-N': 'v1' }

  it('in one go', async () => {
    start()
    await switchOverlays(files)
    expect(state()).toEqual(end)
    await switchOverlays(files) // done: nothing more happens
    expect(state()).toEqual(end)
  })

  it('killed after parking .previous, and after moving boot.qcow2 to .previous', async () => {
    start()
    renameSync(previousOverlay(files), olderOverlay(files, 1))
    await switchOverlays(files)
    expect(state()).toEqual(end)

    rmSync(files.dir, { recursive: true })
    mkdirSync(files.dir)
    start()
    renameSync(previousOverlay(files), olderOverlay(files, 1))
    renameSync(files.boot, previousOverlay(files))
    await switchOverlays(files)
    expect(state()).toEqual(end)
  })
})

describe('pruneOverlays', () => {
  it('keeps the newest points, .previous counted', async () => {
    put(files.boot, 'v5')
    put(previousOverlay(files), 'v4')
    for (const [ms, v] of [[10, 'v1'], [30, 'v3'], [20, 'v2']] as const) put(olderOverlay(files, ms), v)
    expect((await olderOverlays(files)).map(read)).toEqual(['v1', 'v2', 'v3'])
    expect((await rollbackPoints(files)).map(read)).toEqual(['v4', 'v3', 'v2', 'v1'])
    expect(await pruneOverlays(files, 3)).toEqual([olderOverlay(files, 10)])
    expect((await rollbackPoints(files)).map(read)).toEqual(['v4', 'v3', 'v2'])
    await pruneOverlays(files, 1)
    expect(state()).toEqual({ 'boot.qcow2': 'v5', 'boot.qcow2.previous': 'v4' })
  })
})

describe('promoteOverlay then the swap: rollback --to an older point', () => {
  const start = () => {
    put(files.boot, 'v3')
    put(previousOverlay(files), 'v2')
    put(olderOverlay(files, 5), 'v1')
  }
  const swap = async () => {
    if (read(files.boot) === 'v3') renameSync(files.boot, `${files.boot}.swap`)
    await finishSwap(files)
  }
  const end = { 'boot.qcow2': 'v1', 'boot.qcow2.previous': 'v3', 'boot.qcow2.old-N': 'v2' }

  it('in one go, and resumed after the kill that parked .previous', async () => {
    start()
    await promoteOverlay(files, olderOverlay(files, 5), olderOverlay(files, 9))
    await swap()
    expect(state()).toEqual(end)

    rmSync(files.dir, { recursive: true })
    mkdirSync(files.dir)
    start()
    renameSync(previousOverlay(files), olderOverlay(files, 9)) // killed right after this rename
    await promoteOverlay(files, olderOverlay(files, 5), olderOverlay(files, 9))
    await promoteOverlay(files, olderOverlay(files, 5), olderOverlay(files, 9)) // again: no change
    await swap()
    expect(state()).toEqual(end)
  })
})
