import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { apiAllowed, cookieValue, generateGuiToken, hostAllowed, isLoopback, originAllowed, tokenMatches } from '../../src/gui/access.js'

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

  it('reads one cookie out of a Cookie header', () => {
    assert.equal(cookieValue('a=1; left-token-24243=xyz; b=2', 'left-token-24243'), 'xyz')
    assert.equal(cookieValue('left-token-24244=xyz', 'left-token-24243'), undefined)
    assert.equal(cookieValue('xleft-token-24243=xyz', 'left-token-24243'), undefined)
    assert.equal(cookieValue(undefined, 'left-token-24243'), undefined)
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

  it('lets the API take the token from the header, or from the cookie only on same-origin requests', () => {
    const token = 't'.repeat(32)
    const cookie = `left-token-24243=${token}`
    assert.equal(apiAllowed({ 'x-left-token': token }, 'left-token-24243', token), true)
    assert.equal(apiAllowed({ 'x-left-token': 'x'.repeat(32), cookie, 'sec-fetch-site': 'same-origin' }, 'left-token-24243', token), false)
    assert.equal(apiAllowed({ cookie, 'sec-fetch-site': 'same-origin' }, 'left-token-24243', token), true)
    // Another site, or another port of this host (same-site), or no word from the browser at all.
    for (const site of ['cross-site', 'same-site', 'none', undefined]) {
      assert.equal(apiAllowed({ cookie, 'sec-fetch-site': site }, 'left-token-24243', token), false, String(site))
    }
    assert.equal(apiAllowed({ cookie, 'sec-fetch-site': 'same-origin' }, 'left-token-24244', token), false)
    assert.equal(apiAllowed({}, 'left-token-24243', token), false)
  })
})
