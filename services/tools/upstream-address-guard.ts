import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns'
import { BlockList, isIP } from 'node:net'
import { TtlCache } from '../ttl-cache.ts'

/**
 * Where an upstream address leads: `metadata` (link-local and cloud metadata services, never
 * reachable), `private` (loopback, private, shared, reserved, multicast: reachable only as an IP
 * literal the admin listed, or through a host in TOOL_UPSTREAM_PRIVATE_HOSTS) or `public`.
 */
export type AddressClass = 'public' | 'private' | 'metadata'

// 169.254.0.0/16 holds AWS, GCP, Azure IMDS and ECS; 100.100.100.200 is Alibaba's metadata
// (inside CGNAT space); 168.63.129.16 is Azure's wireserver, a *public* address.
const METADATA_V4 = new BlockList()
METADATA_V4.addSubnet('169.254.0.0', 16, 'ipv4')
METADATA_V4.addAddress('100.100.100.200', 'ipv4')
METADATA_V4.addAddress('168.63.129.16', 'ipv4')

const PRIVATE_V4 = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15],
  ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4]
] as const) PRIVATE_V4.addSubnet(net, prefix, 'ipv4')

// fd00:ec2::254 is AWS's IPv6 IMDS (inside fc00::/7); fe80::/10 is link-local.
const METADATA_V6 = new BlockList()
METADATA_V6.addSubnet('fe80::', 10, 'ipv6')
METADATA_V6.addAddress('fd00:ec2::254', 'ipv6')

// Unique-local, site-local (deprecated), multicast, documentation, discard, Teredo, local NAT64.
const PRIVATE_V6 = new BlockList()
for (const [net, prefix] of [
  ['fc00::', 7], ['fec0::', 10], ['ff00::', 8], ['2001:db8::', 32], ['100::', 64], ['2001::', 32], ['64:ff9b:1::', 48]
] as const) PRIVATE_V6.addSubnet(net, prefix, 'ipv6')

function classifyV4 (address: string): AddressClass {
  if (METADATA_V4.check(address, 'ipv4')) return 'metadata'
  return PRIVATE_V4.check(address, 'ipv4') ? 'private' : 'public'
}

/** The eight 16-bit groups of an IPv6 address (zone id dropped), or null if it is not one. */
function groupsOf (address: string): number[] | null {
  let text = address.replace(/%.*$/, '')
  if (isIP(text) !== 6) return null
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (tail !== null) {
    const b = (tail[1] as string).split('.').map(Number)
    text = text.slice(0, -(tail[1] as string).length) + `${(((b[0] ?? 0) << 8) | (b[1] ?? 0)).toString(16)}:${(((b[2] ?? 0) << 8) | (b[3] ?? 0)).toString(16)}`
  }
  const [head, rest] = text.split('::') as [string, string | undefined]
  const parse = (part: string): number[] => part === '' ? [] : part.split(':').map((g) => parseInt(g, 16))
  const front = parse(head)
  const back = rest === undefined ? [] : parse(rest)
  return [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back]
}

function v4Of (high: number, low: number): string {
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`
}

/**
 * Classifies an IP address, IPv4 or IPv6, in any form Node accepts; null for a hostname. IPv6
 * forms that carry an IPv4 address (mapped ::ffff:0:0/96, compatible ::/96, NAT64 64:ff9b::/96,
 * 6to4 2002::/16) are judged by the IPv4 address they lead to.
 */
export function classifyAddress (address: string): AddressClass | null {
  const family = isIP(address.replace(/%.*$/, ''))
  if (family === 4) return classifyV4(address)
  const g = groupsOf(address)
  if (g === null) return null
  const [g0, g1, g2, g3, g4, g5, g6, g7] = g as [number, number, number, number, number, number, number, number]
  const text = address.replace(/%.*$/, '')
  if (METADATA_V6.check(text, 'ipv6')) return 'metadata'
  const zeros80 = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0
  // IPv4-mapped: the IPv4 address itself.
  if (zeros80 && g5 === 0xffff) return classifyV4(v4Of(g6, g7))
  // IPv4-compatible (deprecated, :: and ::1 among them): never public, metadata if it leads there.
  if (zeros80 && g5 === 0) return classifyV4(v4Of(g6, g7)) === 'metadata' ? 'metadata' : 'private'
  // NAT64 well-known prefix: a gateway translates to the embedded IPv4 address.
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return classifyV4(v4Of(g6, g7))
  // 6to4: the IPv4 address of the relay is in groups 1-2.
  if (g0 === 0x2002) return classifyV4(v4Of(g1, g2))
  if (PRIVATE_V6.check(text, 'ipv6')) {
    // Local-use NAT64 can put the IPv4 address in its last 32 bits: metadata stays refused.
    return classifyV4(v4Of(g6, g7)) === 'metadata' ? 'metadata' : 'private'
  }
  return 'public'
}

/** The refusal's message; the tests expect it word for word. */
export function refusalMessage (address: string, kind: Exclude<AddressClass, 'public'>): string {
  return kind === 'metadata'
    ? `refused address ${address} (link-local or cloud metadata)`
    : `refused address ${address} (loopback, private or reserved: a hostname must resolve to a public address)`
}

export class RefusedAddressError extends Error {
  readonly code = 'EREFUSEDADDRESS'
  constructor (address: string, kind: Exclude<AddressClass, 'public'>) {
    super(refusalMessage(address, kind))
  }
}

export type LookupFn = (hostname: string, options: LookupOptions, callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => void

export interface DnsCacheOptions {
  /** How long an answer is reused (ms). Default 30 s; 0 turns the cache off. */
  ttlMs?: number
  /** Most answers kept; the oldest goes first. Default 1000. */
  maxEntries?: number
  /** The clock, in ms; tests pass a fake one. Default Date.now. */
  now?: () => number
}

export interface AddressPolicy {
  /**
   * Hostnames (lower case, no trailing dot) whose answers may be private (TOOL_UPSTREAM_PRIVATE_HOSTS):
   * internal upstreams named by DNS. Metadata addresses stay refused for them too.
   */
  privateHosts?: ReadonlySet<string>
}

/** The first refused address in a DNS answer for `hostname`, or undefined when all may be used. */
export function refusedAnswer (hostname: string, addresses: string[], policy: AddressPolicy = {}): RefusedAddressError | undefined {
  const mayBePrivate = policy.privateHosts?.has(hostname.toLowerCase().replace(/\.$/, '')) === true
  for (const address of addresses) {
    const kind = classifyAddress(address) ?? 'private'
    if (kind === 'metadata' || (kind === 'private' && !mayBePrivate)) return new RefusedAddressError(address, kind)
  }
  return undefined
}

/**
 * net.connect's lookup, refusing what refusedAnswer refuses: the check happens on the address the
 * socket will really use (undici passes this lookup to net/tls.connect; nothing else resolves),
 * so a DNS answer cannot swap in 127.0.0.1 or 169.254.169.254 after a check. Node skips the
 * lookup for an IP literal host: the runner checks those itself.
 *
 * Answers are cached for a short while (default 30 s, bounded), so a new pooled connection to a
 * known upstream does not wait on the resolver. The cache sits inside this lookup, before the
 * check: every use of an answer, fresh or cached, is checked, and once an entry expires the name
 * is resolved (and checked) again, so a rebinding DNS gains nothing from it. Failures are not
 * cached. (undici's own dns interceptor was not used: it resolves before the connection and
 * rewrites the request's origin to the address, which would put the check away from the socket.)
 */
export function guardedLookup (resolver: LookupFn = dnsLookup as unknown as LookupFn, cacheOptions: DnsCacheOptions = {}, policy: AddressPolicy = {}): LookupFn {
  type Answer = { address: string | LookupAddress[], family: number | undefined }
  const answers = new TtlCache<Answer>(cacheOptions.ttlMs ?? 30_000, { maxEntries: cacheOptions.maxEntries ?? 1000, now: cacheOptions.now })
  const ask = async (hostname: string, options: LookupOptions): Promise<Answer> => await new Promise((resolve, reject) => {
    resolver(hostname, options, (err, address, family) => { if (err !== null) reject(err); else resolve({ address, family }) })
  })
  return (hostname, options, callback) => {
    // The options change the shape of the answer (one address or all, which family).
    const key = `${hostname}\n${options.all === true ? 'all' : 'one'}\n${options.family ?? 0}\n${options.hints ?? 0}`
    // The callback runs on a tick of its own, as dns.lookup's does: what it throws is not
    // swallowed by the promise.
    answers.get(key, async () => await ask(hostname, options)).then(({ address, family }) => {
      const addresses = Array.isArray(address) ? address.map((a) => a.address) : [address]
      const refused = refusedAnswer(hostname, addresses, policy)
      if (refused !== undefined) process.nextTick(callback, refused, '', 0)
      else process.nextTick(callback, null, address, family)
    }, (err: NodeJS.ErrnoException) => { process.nextTick(callback, err, '', 0) })
  }
}
