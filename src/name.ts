// One name type: a VM name is checked once, where it enters (argument, flag, folder listing),
// and only a VmName reaches code that builds paths or libvirt calls from it.
import { UserError } from './errors.js'
import { checkName } from './machines/validate.js'

declare const brand: unique symbol
/** A valid machine name: a hostname label, so never '..', '/', '' or a path. */
export type VmName = string & { readonly [brand]: 'VmName' }

export function isVmName(s: string): s is VmName {
  return checkName(s) === undefined
}

/** The name, or a UserError (exit 2) naming the bad value; nothing has been touched yet. */
export function vmName(s: string): VmName {
  const bad = checkName(s)
  if (bad) throw new UserError(`machine ${s}: ${bad}`, 'Pick a name that is a hostname label, e.g. web1 or db-2.')
  return s as VmName
}

/** Names from the command line: each checked, duplicates once, sorted (the lock order). */
export function vmNames(list: readonly string[]): VmName[] {
  return [...new Set(list.map(vmName))].sort()
}
