// SHA-256 (FIPS 180-4) in plain TypeScript, so model files are sealed and checked the same way in a
// browser as in Node, without the asynchronous SubtleCrypto. 32-bit words in Int32 arithmetic
// (`| 0`, `>>>`), one 64-entry schedule reused per block. Under Node, node:crypto's native hash is
// used instead (reached through process.getBuiltinModule, so nothing imports a node: module): it is
// 15-25× faster, which matters for checkpoints of large models.

const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

type NodeHash = { update(d: Uint8Array): NodeHash; digest(): Uint8Array };
const nodeProcess = (globalThis as { process?: { versions?: { node?: string }; getBuiltinModule?: (id: string) => unknown } }).process;
const nodeCrypto = nodeProcess?.versions?.node && nodeProcess.getBuiltinModule ? (nodeProcess.getBuiltinModule("node:crypto") as { createHash(alg: "sha256"): NodeHash }) : null;

/** The 32-byte SHA-256 digest of the parts one after another: node:crypto's under Node, the portable one elsewhere. */
export function sha256(...parts: Uint8Array[]): Uint8Array {
  if (!nodeCrypto) return sha256Portable(...parts);
  const h = nodeCrypto.createHash("sha256");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** The 32-byte SHA-256 digest of the parts one after another, in plain TypeScript (what a browser runs); no part is copied whole. */
export function sha256Portable(...parts: Uint8Array[]): Uint8Array {
  const h = Int32Array.from([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Int32Array(64), block = new Uint8Array(64);
  let total = 0, held = 0; // bytes so far; bytes of them waiting in `block`
  for (const data of parts) {
    let at = 0;
    total += data.length;
    if (held > 0) {
      const take = Math.min(64 - held, data.length);
      block.set(data.subarray(0, take), held);
      held += take;
      at = take;
      if (held < 64) continue;
      compress(h, w, block, 0);
      held = 0;
    }
    for (; at + 64 <= data.length; at += 64) compress(h, w, data, at);
    block.set(data.subarray(at), 0);
    held = data.length - at;
  }
  // the message's last bytes, a 1 bit, zeros, and its length in bits (64-bit big-endian), to a multiple of 64 bytes
  const tail = new Uint8Array(held < 56 ? 64 : 128);
  tail.set(block.subarray(0, held));
  tail[held] = 0x80;
  const tv = new DataView(tail.buffer);
  tv.setUint32(tail.length - 8, Math.floor(total / 0x20000000)); // the bits above 2^32 of length·8
  tv.setUint32(tail.length - 4, (total * 8) >>> 0);
  for (let at = 0; at < tail.length; at += 64) compress(h, w, tail, at);
  const out = new Uint8Array(32), ov = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) ov.setInt32(4 * i, h[i]!);
  return out;
}

/** One 64-byte block at `at` into the state `h`; `w` is the message schedule's scratch. */
function compress(h: Int32Array, w: Int32Array, bytes: Uint8Array, at: number): void {
  for (let i = 0; i < 16; i++, at += 4) w[i] = (bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!;
  for (let i = 16; i < 64; i++) {
    const a = w[i - 15]!, b = w[i - 2]!;
    const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
    const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
    w[i] = (w[i - 16]! + s0 + w[i - 7]! + s1) | 0;
  }
  let a = h[0]!, b = h[1]!, c = h[2]!, d = h[3]!, e = h[4]!, f = h[5]!, g = h[6]!, k = h[7]!;
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (k + S1 + ((e & f) ^ (~e & g)) + K[i]! + w[i]!) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
  }
  h[0] = (h[0]! + a) | 0; h[1] = (h[1]! + b) | 0; h[2] = (h[2]! + c) | 0; h[3] = (h[3]! + d) | 0;
  h[4] = (h[4]! + e) | 0; h[5] = (h[5]! + f) | 0; h[6] = (h[6]! + g) | 0; h[7] = (h[7]! + k) | 0;
}
