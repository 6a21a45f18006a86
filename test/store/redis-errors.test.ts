// Redis failures are told by the call they come from and the reply's code, not by message text.
import t from 'tap'
import { StoreUnavailableError } from '../../services/store/index.ts'
import { toStoreError, withStoreErrors } from '../../services/store/redis-errors.ts'

const reply = (message: string): Error => Object.assign(new Error(message), { name: 'ReplyError' })

t.test('a reply whose code means Redis cannot serve is an outage; other replies are bugs', async (t) => {
  t.type(toStoreError(reply('LOADING Redis is loading the dataset in memory')), StoreUnavailableError)
  t.type(toStoreError(reply('READONLY You can\'t write against a read only replica.')), StoreUnavailableError)
  const wrongType = reply('WRONGTYPE Operation against a key holding the wrong kind of value')
  t.equal(toStoreError(wrongType), wrongType)
  const mentions = reply('ERR Error running script: LOADING is only a word here')
  t.equal(toStoreError(mentions), mentions, 'only the first word is the code')
})

t.test('any other failure of a Redis call is an outage (ioredis\'s own errors carry no code)', async (t) => {
  const closed = toStoreError(new Error('Connection is closed.'))
  t.type(closed, StoreUnavailableError)
  t.equal((closed as StoreUnavailableError).code, 'STORE_UNAVAILABLE')
})

t.test('withStoreErrors tags the named methods\' Redis failures, not JavaScript\'s own errors', async (t) => {
  const log = {
    async lost (): Promise<string> { throw new Error('Stream isn\'t writeable and enableOfflineQueue options is false') },
    async corrupt (): Promise<unknown> { return JSON.parse('{') },
    async fine (): Promise<string> { return 'ok' },
    untouched (): string { return 'sync' }
  }
  const tagged = withStoreErrors(log, ['lost', 'corrupt', 'fine'])
  await t.rejects(tagged.lost(), StoreUnavailableError)
  await t.rejects(tagged.corrupt(), SyntaxError)
  t.equal(await tagged.fine(), 'ok')
  t.equal(tagged.untouched(), 'sync')
})
