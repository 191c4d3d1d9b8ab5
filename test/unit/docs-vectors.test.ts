import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { RAW, cidOf, encodeNode } from '../../src/object/index.js'
import { encodeFrame } from '../../src/sync/frame.js'
import { type Message, PROTOCOL_VERSION, encodeMessage } from '../../src/sync/messages.js'
import { derivePsk } from '../../src/sync/tls.js'

/** docs/protocol.md, read from the repository (tests run from dist/test/unit). */
const PROTOCOL_MD = fileURLToPath(new URL('../../../docs/protocol.md', import.meta.url))

/** The hex frames of the "Encoded examples" block, in order, as [name, hex]. */
function documentedFrames(markdown: string): Array<[string, string]> {
  const start = markdown.indexOf('### Encoded examples')
  const open = markdown.indexOf('```\n', start) + 4
  const block = markdown.slice(open, markdown.indexOf('```', open))
  const frames: Array<[string, string]> = []
  for (const line of block.split('\n')) {
    const bytes = line.replace(/\(.*\)\s*$/, '')
    const named = /^(\w+)\s+(.*)$/.exec(bytes)
    if (named !== null) frames.push([named[1]!, named[2]!.replace(/\s+/g, '')])
    else if (bytes.trim() !== '') frames[frames.length - 1]![1] += bytes.replace(/\s+/g, '')
  }
  return frames
}

describe('docs: the byte examples in docs/protocol.md are what the code sends', () => {
  it('encodes every documented frame byte for byte', async () => {
    const markdown = await readFile(PROTOCOL_MD, 'utf8')
    const empty = encodeNode({ type: 'dir', entries: [] })
    const commit = encodeNode({ type: 'commit', tree: empty.cid, parents: [], generation: 1, author: 'a1b2c3d4e5f60718', time: 1700000000000, message: 'first' })
    assert.ok(markdown.includes(commit.cid.toString()), 'the example commit CID is the one the docs name')
    const peer = 'a1b2c3d4e5f60718'
    const expected: Array<[string, Message]> = [
      ['hello', { t: 'hello', v: PROTOCOL_VERSION, peer, head: commit.cid }],
      ['hello', { t: 'hello', v: PROTOCOL_VERSION, peer, head: null }],
      ['want', { t: 'want', cids: [commit.cid] }],
      ['block', { t: 'block', cid: empty.cid, data: empty.bytes, z: 0 }],
      ['missing', { t: 'missing', cid: cidOf(RAW, new Uint8Array(0)) }],
      ['head', { t: 'head', cid: commit.cid }],
      ['bye', { t: 'bye' }]
    ]
    const documented = documentedFrames(markdown)
    assert.deepEqual(documented.map(([name]) => name), expected.map(([name]) => name))
    documented.forEach(([name, hex], i) => {
      assert.equal(hex, encodeFrame(encodeMessage(expected[i]![1])).toString('hex'), `the ${name} frame (#${i + 1})`)
    })
  })

  it('derives the documented PSK from the documented key', async () => {
    const markdown = await readFile(PROTOCOL_MD, 'utf8')
    const psk = derivePsk('correct-horse-battery-staple').toString('hex')
    assert.ok(markdown.includes(`the key \`correct-horse-battery-staple\` gives the PSK\n\`${psk}\``), psk)
  })
})
