// mmdebstrap: a Debian root filesystem as a tarball, straight from the archive.
import { run } from './exec.js'

export interface BootstrapSpec {
  suite: string
  /** Debian architecture name (amd64, arm64). */
  arch: string
  mirror: string
  variant: string
  packages: string[]
}

/** Bootstraps into `tarball`; mmdebstrap's own progress goes to `onOutput` as it comes. */
export async function bootstrap(spec: BootstrapSpec, tarball: string, onOutput: (chunk: string) => void): Promise<void> {
  await run(
    ['mmdebstrap'],
    [`--variant=${spec.variant}`, `--architectures=${spec.arch}`, `--include=${spec.packages.join(',')}`, '--mode=root', spec.suite, tarball, spec.mirror],
    { onStderr: onOutput, privileged: true },
  )
}
