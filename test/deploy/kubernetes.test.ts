import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { ConfigMap, Service } from 'kubernetes-models/v1'
import { Deployment } from 'kubernetes-models/apps/v1'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2'
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1'
import { ConfigSchema, loadConfig } from '../../plugins/config.ts'
import { BULLMQ_PREFIX } from '../../services/executions/bullmq-queue.ts'

// deploy/kubernetes/ is validated two ways. (1) Against Kubernetes' own OpenAPI schemas and
// KEDA's CRD schemas, as kubernetes-models (npm) compiles them: types, required fields, enums.
// Like a non-strict kubectl it lets unknown fields through, so (2) checks what this service
// depends on: every setting is one the service knows, roles, probes, ports, drain timings, the
// selectors, and the KEDA trigger's list naming BullMQ's wait list.

const DIR = path.join(import.meta.dirname, '../../deploy/kubernetes')

// Each kind the directory may hold, with the model that validates it.
const MODELS: Record<string, new (data: any) => { validate: () => void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'keda.sh/v1alpha1/TriggerAuthentication': TriggerAuthentication
}

interface Manifest { apiVersion: string, kind: string, metadata: { name: string }, spec?: any, data?: Record<string, string>, file: string }

const manifests: Manifest[] = []
for (const file of readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f)).sort()) {
  for (const doc of parseAllDocuments(readFileSync(path.join(DIR, file), 'utf8'))) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`)
    const value = doc.toJS() as Manifest | null
    if (value !== null) manifests.push({ ...value, file })
  }
}
const find = (kind: string, name: string): Manifest => {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name)
  if (found === undefined) throw new Error(`no ${kind} ${name} in deploy/kubernetes/`)
  return found
}

t.test('every manifest is valid against its Kubernetes or KEDA schema', async (t) => {
  t.ok(manifests.length >= 8, `${manifests.length} manifests`)
  for (const manifest of manifests) {
    const { file, ...object } = manifest
    const Model = MODELS[`${object.apiVersion}/${object.kind}`]
    if (Model === undefined) { t.fail(`${file}: no schema for ${object.apiVersion} ${object.kind}`); continue }
    t.doesNotThrow(() => { new Model(object).validate() }, `${file}: ${object.kind} ${object.metadata.name}`)
  }
})

t.test('a schema violation is caught (the validator is not a no-op)', async (t) => {
  const api = find('Deployment', 'tenant-enclave-api')
  const broken = structuredClone(api)
  broken.spec.template.spec.containers[0].ports[0].containerPort = 'three thousand'
  t.throws(() => { new Deployment(broken).validate() })
  const scaled = structuredClone(find('ScaledObject', 'tenant-enclave-worker'))
  delete scaled.spec.scaleTargetRef
  t.throws(() => { new ScaledObject(scaled as any).validate() })
})

const configMap = find('ConfigMap', 'tenant-enclave')
const settings = configMap.data ?? {}
const known = new Set(Object.keys(ConfigSchema.properties))

t.test('the ConfigMap holds settings the service knows, with values it accepts', async (t) => {
  for (const name of Object.keys(settings)) t.ok(known.has(name), `${name} is a setting`)
  t.doesNotThrow(() => loadConfig({ ...settings, JWT_SECRET: 'x'.repeat(32), DATABASE_URL: 'postgres://u:p@h/db', REDIS_URL: 'redis://h' }))
})

for (const [name, role, preStopSeconds] of [['tenant-enclave-api', 'api', 5], ['tenant-enclave-worker', 'worker', 0]] as const) {
  t.test(`${name}: role, probes, port and drain`, async (t) => {
    const deployment = find('Deployment', name)
    const pod = deployment.spec.template.spec
    t.same(deployment.spec.selector.matchLabels, pick(deployment.spec.template.metadata.labels, Object.keys(deployment.spec.selector.matchLabels)), 'the selector matches its pods')
    const [container] = pod.containers
    const env = Object.fromEntries((container.env ?? []).map((e: { name: string, value: string }) => [e.name, e.value]))
    for (const key of Object.keys(env)) t.ok(known.has(key), `${key} is a setting`)
    t.equal(env.SERVICE_ROLE, role)
    t.ok((ConfigSchema.properties.SERVICE_ROLE as unknown as { enum: string[] }).enum.includes(role), `${role} is a SERVICE_ROLE value`)
    t.same(container.envFrom.map((e: { configMapRef?: { name: string } }) => e.configMapRef?.name).filter(Boolean), ['tenant-enclave'])
    t.equal(container.ports[0].containerPort, Number(settings.PORT), 'the container port is PORT')
    t.equal(container.livenessProbe.httpGet.path, '/health')
    t.equal(container.startupProbe.httpGet.path, '/health')
    t.equal(container.readinessProbe.httpGet.path, '/ready')
    const pause = container.lifecycle?.preStop?.exec?.command?.[0] === 'sleep' ? Number(container.lifecycle.preStop.exec.command[1]) : 0
    t.equal(pause, preStopSeconds, 'preStop pause')
    const grace = Number(settings.SHUTDOWN_GRACE_MS) / 1000
    t.ok(pod.terminationGracePeriodSeconds > pause + grace, `terminationGracePeriodSeconds (${String(pod.terminationGracePeriodSeconds)}) outlasts the pause and SHUTDOWN_GRACE_MS (${pause} + ${grace} s)`)
  })
}

t.test('Service, PodDisruptionBudgets and autoscalers point at the right pods', async (t) => {
  const apiLabels = find('Deployment', 'tenant-enclave-api').spec.template.metadata.labels
  const workerLabels = find('Deployment', 'tenant-enclave-worker').spec.template.metadata.labels
  const service = find('Service', 'tenant-enclave')
  t.same(service.spec.selector, pick(apiLabels, Object.keys(service.spec.selector)), 'the Service selects api pods')
  t.notSame(service.spec.selector, pick(workerLabels, Object.keys(service.spec.selector)), 'and not worker pods')
  t.same(find('PodDisruptionBudget', 'tenant-enclave-api').spec.selector.matchLabels, find('Deployment', 'tenant-enclave-api').spec.selector.matchLabels)
  t.same(find('PodDisruptionBudget', 'tenant-enclave-worker').spec.selector.matchLabels, find('Deployment', 'tenant-enclave-worker').spec.selector.matchLabels)
  const hpa = find('HorizontalPodAutoscaler', 'tenant-enclave-api')
  t.match(hpa.spec.scaleTargetRef, { kind: 'Deployment', name: 'tenant-enclave-api' })
  t.equal(hpa.spec.metrics[0].resource.name, 'cpu')
  const scaled = find('ScaledObject', 'tenant-enclave-worker')
  t.equal(scaled.spec.scaleTargetRef.name, 'tenant-enclave-worker')
  t.equal(find('TriggerAuthentication', scaled.spec.triggers[0].authenticationRef.name).kind, 'TriggerAuthentication')
})

t.test('the KEDA trigger reads BullMQ\'s wait list of the configured queue', async (t) => {
  const [trigger] = find('ScaledObject', 'tenant-enclave-worker').spec.triggers
  t.equal(trigger.type, 'redis')
  t.equal(trigger.metadata.listName, `${BULLMQ_PREFIX}:${settings.EXECUTION_QUEUE_NAME}:wait`, 'the prefix bullmq-queue.ts gives BullMQ, the ConfigMap\'s queue name')
})

function pick (object: Record<string, string>, keys: string[]): Record<string, string> {
  return Object.fromEntries(keys.map((key) => [key, object[key] as string]))
}
