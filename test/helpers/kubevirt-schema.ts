// KubeVirt's own API schema (its published OpenAPI/Swagger 2.0 definition, kept in shared/
// next to the repository) as a JSON-schema validator (ajv). Like `kubectl apply` with the
// server's strict field validation, an unknown field is an error: every object schema that
// lists its properties and says nothing about others gets additionalProperties: false.
import AjvModule from 'ajv'
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { ROOT } from './fleet.js'

const CANDIDATES = [resolve(ROOT, '..', 'shared', 'kubevirt', 'openapi-spec.json'), '/work/shared/kubevirt/openapi-spec.json']
/** FLEET_KUBEVIRT_OPENAPI overrides; else next to the repository, else the team's shared folder. */
export const KUBEVIRT_SPEC = process.env.FLEET_KUBEVIRT_OPENAPI || CANDIDATES.find((f) => existsSync(f)) || CANDIDATES[0]!

type Schema = Record<string, unknown>

function closeObjects(s: unknown): void {
  if (!s || typeof s !== 'object') return
  if (Array.isArray(s)) return s.forEach(closeObjects)
  const o = s as Schema
  if (o.properties && typeof o.properties === 'object' && o.additionalProperties === undefined) o.additionalProperties = false
  for (const v of Object.values(o)) closeObjects(v)
}

/** A validator for definitions[definition]; returns the errors as readable lines (none: valid). */
export function kubevirtValidator(definition: string, file = KUBEVIRT_SPEC): (obj: unknown) => string[] {
  const spec = JSON.parse(readFileSync(file, 'utf8')) as { definitions: Record<string, Schema> }
  if (!spec.definitions[definition]) throw new Error(`${file} has no definitions['${definition}']`)
  closeObjects(spec.definitions)
  const Ajv = (AjvModule as unknown as { default?: typeof AjvModule }).default ?? AjvModule
  // strict: false: Swagger's x-kubernetes-* keywords and int32/int64 formats are not JSON schema's.
  const ajv = new (Ajv as unknown as new (o: object) => { compile: (s: object) => ((d: unknown) => boolean) & { errors?: { instancePath: string; message?: string; params: object }[] | null } })({ strict: false, allErrors: true, validateFormats: false })
  const validate = ajv.compile({ definitions: spec.definitions, $ref: `#/definitions/${definition}` })
  return (obj) => (validate(obj) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`))
}
