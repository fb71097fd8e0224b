// Interoperability check with a client library written elsewhere: nsqjs publishes <count>
// messages to nsqd (PUB, MPUB and DPUB) and consumes them on one channel, with the connection
// options named by <mode> (plain, snappy, deflate, tls, tls-snappy or tls-deflate). Every body must
// arrive exactly once.
//
// The consumer's connection must show the negotiated TLS and compression in nsqd's /stats. With a lookupd
// HTTP port the reader discovers nsqd through nsqlookupd's /lookup instead of connecting directly.
//
// usage: node test.js <nsqd host> <nsqd tcp port> <count> <mode> <nsqd http port> [<lookupd http port>]
'use strict'

const nsq = require('nsqjs')

const [host, portText, countText, mode, httpText, lookupdText] = process.argv.slice(2)
const port = Number(portText)
const httpPort = Number(httpText)
const lookupdPort = lookupdText ? Number(lookupdText) : 0
const count = Number(countText)
const TIMEOUT_MS = 60000
const MPUB_BATCH = 50
const DEFERRED = 5
const DEFER_MS = 200
const topic = lookupdPort ? `nsqjs_${mode}_lookupd` : `nsqjs_${mode}`
const LOOKUP_POLL_MS = 50
const channel = 'interop'

const MODES = ['plain', 'snappy', 'deflate', 'tls', 'tls-snappy', 'tls-deflate']
if (!host || !port || !count || !httpPort || !MODES.includes(mode)) {
  console.error(`usage: node test.js <host> <tcp port> <count> <${MODES.join('|')}> <http port>`)
  process.exit(2)
}

const tls = mode.startsWith('tls')
const snappy = mode.endsWith('snappy')
const deflate = mode.endsWith('deflate')
const conn = {}
// nsqd's certificate is self-signed by the test, so nsqjs is told not to verify it.
if (tls) Object.assign(conn, { tls: true, tlsVerification: false })
if (snappy) conn.snappy = true
if (deflate) conn.deflate = true

function die(what) {
  console.error(`nsqjs ${mode}: FAIL: ${what}`)
  process.exit(1)
}

const timer = setTimeout(() => die(`timeout: ${seen.size} of ${count} received`), TIMEOUT_MS)
const seen = new Set()
let duplicates = 0

const readerOptions = lookupdPort
  ? { lookupdHTTPAddresses: [`${host}:${lookupdPort}`] }
  : { nsqdTCPAddresses: [`${host}:${port}`] }
const reader = new nsq.Reader(topic, channel, {
  ...readerOptions,
  maxInFlight: 100,
  ...conn,
})
reader.on('error', (err) => die(`reader error: ${err}`))
reader.on('discard', () => die('message discarded'))
reader.on('message', (msg) => {
  const body = msg.body.toString()
  if (!/^m-\d+$/.test(body)) die(`unexpected body ${body}`)
  if (seen.has(body)) duplicates++
  seen.add(body)
  msg.finish()
  if (seen.size === count) {
    clearTimeout(timer)
    checkCompression()
      .then(() => {
        reader.close()
        if (duplicates > 0) die(`${duplicates} duplicates`)
        console.log(`nsqjs ${topic}: ${count} messages published and consumed`)
        process.exit(0)
      })
      .catch((err) => die(`${err}`))
  }
})

async function checkCompression() {
  const url = `http://${host}:${httpPort}/stats?format=json&topic=${topic}&channel=${channel}`
  const stats = await (await fetch(url)).json()
  const clients = stats.topics[0].channels[0].clients
  if (clients.length !== 1) throw new Error(`${clients.length} consumers in /stats`)
  const c = clients[0]
  if (c.tls !== tls || c.snappy !== snappy || c.deflate !== deflate) {
    throw new Error(`negotiated tls=${c.tls} snappy=${c.snappy} deflate=${c.deflate}`)
  }
  if (c.message_count !== count) throw new Error(`message_count ${c.message_count}`)
}

reader.on('nsqd_connected', () => {
  const writer = new nsq.Writer(host, port, conn)
  writer.on('error', (err) => die(`writer error: ${err}`))
  writer.on('ready', () => publishAll(writer))
  writer.connect()
})
// With discovery, the topic must be registered before the reader looks it up.
async function prepare() {
  if (!lookupdPort) return
  await fetch(`http://${host}:${httpPort}/topic/create?topic=${topic}`, { method: 'POST' })
  for (;;) {
    const res = await fetch(`http://${host}:${lookupdPort}/lookup?topic=${topic}`)
    if (res.status === 200) {
      const { producers } = await res.json()
      if (producers.some((p) => p.tcp_port === port)) return
    }
    await new Promise((resolve) => setTimeout(resolve, LOOKUP_POLL_MS))
  }
}
prepare()
  .then(() => reader.connect())
  .catch((err) => die(`${err}`))

function publishAll(writer) {
  const bodies = Array.from({ length: count }, (_, i) => `m-${i}`)
  const deferred = bodies.splice(0, Math.min(DEFERRED, count))
  const half = Math.floor(bodies.length / 2)
  const single = bodies.slice(0, half)
  const batched = bodies.slice(half)

  for (const b of deferred) {
    // nsqjs sends DPUB only for a one-element array.
    writer.deferPublish(topic, [b], DEFER_MS, (err) => err && die(`DPUB: ${err}`))
  }
  // PUB one at a time, then MPUB in batches.
  let i = 0
  const next = () => {
    if (i < single.length) {
      writer.publish(topic, single[i++], (err) => (err ? die(`PUB: ${err}`) : next()))
      return
    }
    for (let k = 0; k < batched.length; k += MPUB_BATCH) {
      writer.publish(topic, batched.slice(k, k + MPUB_BATCH), (err) => err && die(`MPUB: ${err}`))
    }
  }
  next()
}
