// One place that turns a Redis address into an ioredis client: a single server
// (`redis://`, `rediss://`) or a Redis Cluster (`redis+cluster://h1:p1,h2:p2,...`, TLS with
// `rediss+cluster://`), so every Redis user of the service (the limit store, sessions, the event
// log, the queue) speaks to either through the same options.
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'

// Pause between redirections on a cluster while a slot's master changes (see openRedis).
const FAILOVER_RETRY_MS = 300

/** A client of either kind: the commands, scripts, pub/sub and duplicate() the service uses are on both. */
export type RedisClient = Redis | Cluster

export interface ClusterAddress {
  tls: boolean
  username?: string
  password?: string
  nodes: Array<{ host: string, port: number }>
}

const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#@]+)(?:\/(\d*))?\/?$/
const NODE = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/

export function isClusterUrl (url: string): boolean {
  return /^rediss?\+cluster:\/\//.test(url)
}

/**
 * `redis+cluster://[user:password@]h1:p1,h2:p2[/0]` → its seed nodes and credentials (one
 * password for every node, as Redis Cluster requires). Throws with what is wrong, for the config.
 */
export function parseClusterUrl (url: string): ClusterAddress {
  const match = CLUSTER_URL.exec(url)
  if (match === null) throw new Error('a cluster URL looks like redis+cluster://host1:port1,host2:port2 (rediss+cluster:// for TLS)')
  const [, scheme, userinfo, hosts, db] = match as unknown as [string, string, string | undefined, string, string | undefined]
  if (db !== undefined && db !== '' && db !== '0') throw new Error('a Redis Cluster has only database 0: remove the /' + db + ' from the cluster URL')
  const nodes = hosts.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '').map((entry) => {
    const node = NODE.exec(entry)
    const port = Number(node?.[2])
    if (node === null || port < 1 || port > 65535) throw new Error(`"${entry}" is not a cluster node like host:port`)
    return { host: (node[1] as string).replace(/^\[|\]$/g, ''), port }
  })
  if (nodes.length === 0) throw new Error('a cluster URL names at least one node')
  const address: ClusterAddress = { tls: scheme === 'rediss', nodes }
  if (userinfo !== undefined && userinfo !== '') {
    const colon = userinfo.indexOf(':')
    const user = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon))
    if (user !== '') address.username = user
    if (colon >= 0) address.password = decodeURIComponent(userinfo.slice(colon + 1))
  }
  return address
}

/** `host:port,host:port` (REDIS_CLUSTER_NODES) as a cluster URL. */
export function clusterUrlOfNodes (nodes: string): string {
  return `redis+cluster://${nodes.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '').join(',')}`
}

export interface RedisClientOptions extends Pick<RedisOptions, 'connectTimeout' | 'commandTimeout' | 'maxRetriesPerRequest' | 'autoResendUnfulfilledCommands' | 'connectionName' | 'lazyConnect'> {
  keyPrefix?: string
  enableOfflineQueue?: boolean
  /** Delay before reconnect attempt `attempt` (the cluster's whole-cluster retry on a cluster). */
  retryStrategy?: (attempt: number) => number | null
}

/**
 * A client for `url`. On a cluster the per-connection options go to every node's connection,
 * and the retry strategy, key prefix and offline queue to the cluster client; commands follow
 * MOVED/ASK redirections and a failover's new master by themselves.
 */
export function openRedis (url: string, options: RedisClientOptions = {}): RedisClient {
  const { keyPrefix, enableOfflineQueue, retryStrategy, ...perConnection } = options
  if (!isClusterUrl(url)) {
    return new Redis(url, {
      ...perConnection,
      ...(keyPrefix === undefined ? {} : { keyPrefix }),
      ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
      ...(retryStrategy === undefined ? {} : { retryStrategy })
    })
  }
  const address = parseClusterUrl(url)
  const redisOptions: RedisOptions = {
    ...perConnection,
    ...(address.username === undefined ? {} : { username: address.username }),
    ...(address.password === undefined ? {} : { password: address.password }),
    ...(address.tls ? { tls: {} } : {})
  }
  const clusterOptions: ClusterOptions = {
    redisOptions,
    // A failover, seen by a command: its master's connection is gone and, until the replica is
    // promoted (the cluster's node timeout plus an election: seconds), the other nodes answer
    // MOVED to the dead master or to the replica in turn, or CLUSTERDOWN. ioredis's defaults
    // follow a MOVED at once: a command spent its 16 redirections in a few milliseconds of that
    // ping-pong and failed; a Lua script of BullMQ's (moving a job to delayed) failed so, and
    // left its run queued for good. Waiting between redirections lets a command ride out the
    // promotion (16 × FAILOVER_RETRY_MS ≈ 5 s) and land on the new master.
    retryDelayOnMoved: FAILOVER_RETRY_MS,
    retryDelayOnFailover: FAILOVER_RETRY_MS,
    retryDelayOnClusterDown: FAILOVER_RETRY_MS,
    retryDelayOnTryAgain: FAILOVER_RETRY_MS,
    // The slot map is read again when a node answers MOVED or a node's connection is lost (a
    // failover). No periodic refresh (slotsRefreshInterval): ioredis re-arms its timer from the
    // callback of a refresh under way, so a disconnect() then leaves a timer that keeps
    // refreshing and keeps the process alive.
    ...(keyPrefix === undefined ? {} : { keyPrefix }),
    ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
    ...(retryStrategy === undefined ? {} : { clusterRetryStrategy: retryStrategy }),
    // TLS certificates name the host the client was given, not the address a node announces.
    ...(address.tls ? { dnsLookup: (host: string, callback: (err: Error | null, address: string) => void) => { callback(null, host) } } : {})
  }
  return new Cluster(address.nodes, clusterOptions)
}

/** Another connection to the same Redis with the same options (pub/sub and blocking reads need their own). */
export function duplicateRedis (client: RedisClient, connectionName?: string): RedisClient {
  const name = connectionName === undefined ? {} : { connectionName }
  if (client instanceof Cluster) return client.duplicate([], { redisOptions: { ...client.options.redisOptions, ...name } })
  return client.duplicate(name)
}
