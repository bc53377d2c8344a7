// Progress on stderr for long steps: a spinner on a terminal (tmux), plain lines in a pipe,
// nothing but the JSON under --json; and qemu-img convert's own -p progress reaches the task.
import { execa } from 'execa'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { convert } from '../../src/adapters/qemu-img.js'
import { blankImage, FLEET, fleet, sandbox } from '../helpers/fleet.js'
import { terminal, tmuxMissing, type Terminal } from '../helpers/tmux.js'

const sb = sandbox()
const env = { ...sb.env, PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', TERM: 'xterm' }
const open: Terminal[] = []
afterAll(async () => {
  for (const t of open) await t.close()
  sb.cleanup()
})

const COPYING = /Copying \S+ into the image store/

describe('progress of a long step (copy into the image store)', () => {
  it('in a pipe: plain lines on stderr (start, then done with the time), only the result on stdout', async () => {
    await blankImage(join(sb.dir, 'a.qcow2'))
    const r = await fleet(sb, ['image', 'import', join(sb.dir, 'a.qcow2'), '--channel', 'a'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(new RegExp(`${COPYING.source}…\\n`))
    expect(r.stderr).toMatch(new RegExp(`${COPYING.source}: done \\(\\d+\\.\\d s\\)$`, 'm'))
    expect(r.stdout).not.toMatch(COPYING)
    expect(r.stdout).toMatch(/^a → [0-9a-f]{64}/)
  })

  it('under --json in a pipe: nothing on stderr, one JSON document on stdout', async () => {
    await blankImage(join(sb.dir, 'b.qcow2'), '65M')
    const r = await fleet(sb, ['image', 'import', join(sb.dir, 'b.qcow2'), '--channel', 'b', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toBe('')
    expect(JSON.parse(r.stdout)).toMatchObject({ channel: 'b' })
  })

  it.skipIf(tmuxMissing)('on a terminal: the spinner line ends as "... done (N s)"; under --json the screen holds only the JSON', async () => {
    await blankImage(join(sb.dir, 'c.qcow2'), '66M')
    const t = await terminal(sb.dir, env, [FLEET, 'image', 'import', join(sb.dir, 'c.qcow2'), '--channel', 'c'])
    open.push(t)
    expect(await t.exited(60_000)).toBe(0)
    const screen = await t.screen()
    expect(screen).toMatch(new RegExp(`${COPYING.source}\\.\\.\\. done \\(\\d+\\.\\d s\\)`))
    expect(screen).not.toMatch(new RegExp(`${COPYING.source}…`)) // the spinner, not the plain lines
    expect(screen).toMatch(/^c → [0-9a-f]{64}/m)

    await blankImage(join(sb.dir, 'd.qcow2'), '67M')
    const j = await terminal(sb.dir, env, [FLEET, 'image', 'import', join(sb.dir, 'd.qcow2'), '--channel', 'd', '--json'])
    open.push(j)
    expect(await j.exited(60_000)).toBe(0)
    // tmux's own last line ("Pane is dead") is not the command's output.
    const shown = (await j.screen()).split('\n').filter((l) => !/^Pane is dead/.test(l)).join('\n').trim()
    expect(shown).not.toMatch(COPYING)
    expect(JSON.parse(shown)).toMatchObject({ channel: 'd' })
  })
})

describe('qemu-img convert -p', () => {
  it('passes its own percentages on, up to 100', async () => {
    const raw = join(sb.dir, 'p.raw')
    await execa('qemu-img', ['create', '-q', '-f', 'raw', raw, '32M'])
    await execa('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=1M', 'count=32', 'conv=notrunc', 'status=none'])
    const seen: number[] = []
    await convert(raw, 'raw', join(sb.dir, 'p.qcow2'), { onPercent: (p) => seen.push(p) })
    expect(seen.length).toBeGreaterThan(1)
    expect(seen.at(-1)).toBe(100)
    expect([...seen].sort((x, y) => x - y)).toEqual(seen)
  })
})
