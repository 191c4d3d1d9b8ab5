import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { NONCE, generateGuiToken, hostAllowed, isLoopback, originAllowed, tokenMatches, tokenProof } from '../../src/gui/access.js'

describe('gui/access', () => {
  it('makes tokens of 32 URL-safe characters, different each time', () => {
    const a = generateGuiToken()
    assert.match(a, /^[\w-]{32}$/)
    assert.notEqual(a, generateGuiToken())
  })

  it('matches a token only exactly', () => {
    assert.equal(tokenMatches('abc', 'abc'), true)
    assert.equal(tokenMatches('abd', 'abc'), false)
    assert.equal(tokenMatches('abcd', 'abc'), false)
    assert.equal(tokenMatches('', 'abc'), false)
    assert.equal(tokenMatches(undefined, 'abc'), false)
  })

  it('accepts a Host that is an address, localhost or the bound name, and refuses other names (DNS rebinding)', () => {
    for (const host of ['127.0.0.1:24243', '127.0.0.1', '[::1]:24243', 'localhost:24243', 'LOCALHOST', 'app.localhost:1', '10.0.0.5:24243']) {
      assert.equal(hostAllowed(host, '127.0.0.1'), true, host)
    }
    for (const host of ['evil.example:24243', 'evil.example', '127.0.0.1.nip.io:24243', '', '[::1', 'localhost.evil.example']) {
      assert.equal(hostAllowed(host, '127.0.0.1'), false, host)
    }
    assert.equal(hostAllowed(undefined, '127.0.0.1'), false)
    assert.equal(hostAllowed('nas.lan:24243', 'nas.lan'), true)
  })

  it('accepts no Origin or its own, and refuses every other', () => {
    assert.equal(originAllowed(undefined, '127.0.0.1:24243'), true)
    assert.equal(originAllowed('http://127.0.0.1:24243', '127.0.0.1:24243'), true)
    assert.equal(originAllowed('http://127.0.0.1:8080', '127.0.0.1:24243'), false)
    assert.equal(originAllowed('https://127.0.0.1:24243', '127.0.0.1:24243'), false)
    assert.equal(originAllowed('http://evil.example', '127.0.0.1:24243'), false)
    assert.equal(originAllowed('null', '127.0.0.1:24243'), false)
    assert.equal(originAllowed('http://127.0.0.1:24243', undefined), false)
  })

  it('knows loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.0.0.10', 'localhost', '::1']) assert.equal(isLoopback(host), true, host)
    for (const host of ['0.0.0.0', '10.0.0.1', '::', 'example.com', '128.0.0.1']) assert.equal(isLoopback(host), false, host)
  })

  it('proves it holds the token by a nonce, without showing it', () => {
    const token = generateGuiToken()
    const nonce = 'ab'.repeat(16)
    assert.equal(tokenProof(token, nonce), tokenProof(token, nonce))
    assert.match(tokenProof(token, nonce), /^[0-9a-f]{64}$/)
    assert.notEqual(tokenProof(token, nonce), tokenProof(generateGuiToken(), nonce))
    assert.notEqual(tokenProof(token, nonce), tokenProof(token, 'cd'.repeat(16)))
    assert.ok(!tokenProof(token, nonce).includes(token))
    assert.ok(NONCE.test(nonce))
    for (const bad of ['', 'ab', 'xyz'.repeat(10), 'AB'.repeat(16), 'a'.repeat(129)]) assert.ok(!NONCE.test(bad), bad)
  })
})
