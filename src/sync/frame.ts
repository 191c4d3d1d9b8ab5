/**
 * Framing: the byte stream between peers is a sequence of frames, each a
 * 4-byte big-endian payload length followed by the payload (one message).
 * Pure: FrameDecoder turns arbitrary pieces of a stream into whole frames and
 * never buffers more than one frame, because the length is checked against
 * MAX_FRAME before any payload is kept.
 */
import { ProtocolError } from '../errors.js'

/** Bytes in the length prefix. */
export const FRAME_HEADER = 4

/**
 * Largest payload accepted, in bytes (16 MiB). Chunks are at most 256 KiB,
 * but a directory node costs about 100 bytes per entry, so a folder of
 * 150,000 files is a node of some 15 MB that must still fit in one frame.
 * A receiver buffers at most one frame, so this is also a memory bound.
 */
export const MAX_FRAME = 16 * 1024 * 1024

/** Prefixes `payload` with its length. Throws ProtocolError when it is empty or over `maxFrame`. */
export function encodeFrame(payload: Uint8Array, maxFrame = MAX_FRAME): Buffer {
  checkLength(payload.length, maxFrame)
  const out = Buffer.allocUnsafe(FRAME_HEADER + payload.length)
  out.writeUInt32BE(payload.length, 0)
  out.set(payload, FRAME_HEADER)
  return out
}

function checkLength(length: number, maxFrame: number): void {
  if (length === 0) throw new ProtocolError('empty frame')
  if (length > maxFrame) throw new ProtocolError(`frame of ${length} bytes exceeds the ${maxFrame}-byte limit`)
}

/**
 * Reassembles frames from stream pieces of any size. Holds at most one
 * partial frame (≤ FRAME_HEADER + maxFrame bytes) between calls.
 */
export class FrameDecoder {
  private pieces: Buffer[] = []
  private size = 0
  /** Payload length of the frame being assembled, once its header is complete. */
  private need: number | undefined

  /** @param maxFrame largest payload accepted, in bytes */
  constructor(private readonly maxFrame = MAX_FRAME) {}

  /** Bytes held for the incomplete frame. */
  get buffered(): number {
    return this.size
  }

  /**
   * Adds a piece of the stream; returns the frames it completed, in order.
   * Throws ProtocolError on an empty or oversized frame (the stream is then
   * unusable: there is no way to resynchronise).
   */
  push(piece: Uint8Array): Buffer[] {
    const frames: Buffer[] = []
    if (piece.length === 0) return frames
    this.pieces.push(Buffer.from(piece.buffer, piece.byteOffset, piece.length))
    this.size += piece.length
    for (;;) {
      if (this.need === undefined) {
        if (this.size < FRAME_HEADER) break
        const length = this.take(FRAME_HEADER).readUInt32BE(0)
        checkLength(length, this.maxFrame)
        this.need = length
      }
      if (this.size < this.need) break
      frames.push(this.take(this.need))
      this.need = undefined
    }
    return frames
  }

  /** Call at end of stream: throws ProtocolError if a frame was cut off. */
  finish(): void {
    if (this.size > 0 || this.need !== undefined) {
      throw new ProtocolError(`stream ended inside a frame (${this.size} of ${this.need ?? FRAME_HEADER} bytes)`)
    }
  }

  /** Removes and returns the first `n` buffered bytes (n ≤ size), copying only when a frame spans pieces. */
  private take(n: number): Buffer {
    const first = this.pieces[0]!
    let out: Buffer
    if (first.length >= n) {
      out = first.subarray(0, n)
      if (first.length === n) this.pieces.shift()
      else this.pieces[0] = first.subarray(n)
    } else {
      out = Buffer.allocUnsafe(n)
      let off = 0
      while (off < n) {
        const p = this.pieces[0]!
        const k = Math.min(p.length, n - off)
        p.copy(out, off, 0, k)
        off += k
        if (k === p.length) this.pieces.shift()
        else this.pieces[0] = p.subarray(k)
      }
    }
    this.size -= n
    return out
  }
}
