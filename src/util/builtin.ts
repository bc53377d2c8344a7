// node:crypto costs a few milliseconds to load (some fifteen internal modules), and the modules
// on every command's way (fsx, host-key, recipients, fleet-id, guestfish) import it for
// functions `fleet list` and most commands never call: loaded on first use, not at start-up.
import { createRequire } from 'node:module'

const load = createRequire(import.meta.url)

export const nodeCrypto = (): typeof import('node:crypto') => load('node:crypto')
