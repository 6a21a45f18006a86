// Redis Cluster's key → slot function (CRC16-XMODEM of the key's hash tag, or of the whole key,
// modulo 16384), as the cluster specification defines it. The cross-slot test checks it against
// CLUSTER KEYSLOT of a real node when REDIS_URL names a cluster.

const TABLE = Array.from({ length: 256 }, (_v, byte) => {
  let crc = byte << 8
  for (let bit = 0; bit < 8; bit++) crc = (crc & 0x8000) !== 0 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  return crc
})

function crc16 (bytes: Uint8Array): number {
  let crc = 0
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ byte) & 0xff] as number)
  return crc
}

/** The part of a key Redis hashes: the text between the first `{` and the next `}`, if not empty. */
export function hashedPart (key: string): string {
  const open = key.indexOf('{')
  if (open < 0) return key
  const close = key.indexOf('}', open + 1)
  if (close < 0 || close === open + 1) return key
  return key.slice(open + 1, close)
}

export function keySlot (key: string): number {
  return crc16(Buffer.from(hashedPart(key), 'utf8')) % 16384
}
