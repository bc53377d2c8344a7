// The order of a rolling upgrade: running VMs in waves of N by name, stopped ones last, together.
import { describe, expect, it } from 'vitest'
import { waves, type UpgradePlan } from '../../src/services/upgrade-plan.js'

const vm = (name: string, wasRunning: boolean) => ({ plan: { name, wasRunning } as UpgradePlan })
const names = (w: { plan: UpgradePlan }[][]) => w.map((x) => x.map((p) => p.plan.name))

describe('waves', () => {
  const todo = [vm('c', true), vm('s2', false), vm('a', true), vm('b', true), vm('s1', false)]
  it('puts at most N running VMs in a wave, in name order, and the stopped ones in one last wave', () => {
    expect(names(waves(todo, 1))).toEqual([['a'], ['b'], ['c'], ['s2', 's1']])
    expect(names(waves(todo, 2))).toEqual([['a', 'b'], ['c'], ['s2', 's1']])
    expect(names(waves(todo, 10))).toEqual([['a', 'b', 'c'], ['s2', 's1']])
  })
  it('has no empty waves', () => {
    expect(names(waves([vm('s', false)], 1))).toEqual([['s']])
    expect(names(waves([vm('r', true)], 3))).toEqual([['r']])
    expect(waves([], 1)).toEqual([])
  })
})
