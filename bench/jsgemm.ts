// A hand-tuned matrix product in plain JavaScript: the ceiling for what
// generated plain-JS kernels can reach on this machine.
//
//   C[M×N] = A[M×K] · B[K×N]        (row-major Float32Array, C overwritten)
//
// B is packed into panels of 4 columns, stored k-major (4 floats per k), a
// block of `NC` columns at a time so the packed block stays in L2; A is read
// in place through 4 row streams. The micro-kernel keeps a 4×4 block of C in
// 16 local accumulators and unrolls k by 2. Rows and columns past the last
// multiple of 4 go through a plain i-k-j loop (accumulating in float32).

/** Columns of B packed per block: K·NC·4 bytes should fit in L2 (1 MiB here). */
const NC = 256;

/** Reused packing buffer, grown on demand. */
let packed = new Float32Array(0);

export function gemm(
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  M: number,
  K: number,
  N: number,
): void {
  const M4 = M & ~3;
  for (let j0 = 0; j0 < N; j0 += NC) {
    const nc = Math.min(NC, N - j0);
    const nc4 = nc & ~3;
    if (M4 > 0) {
      packB(b, K, N, j0, nc4);
      panelProduct(a, packed, c, K, N, M4, j0, nc4);
    }
    edges(a, b, c, M, K, N, M4, j0, nc, nc4);
  }
}

/** packed[jp*K + 4k + q] = B[k, j0 + jp + q] for q < 4, jp a multiple of 4 below nc4. */
function packB(b: Float32Array, K: number, N: number, j0: number, nc4: number): void {
  if (packed.length < K * nc4) packed = new Float32Array(K * nc4);
  const p = packed;
  for (let jp = 0; jp < nc4; jp += 4) {
    let dst = jp * K;
    let src = j0 + jp;
    for (let k = 0; k < K; k++, src += N, dst += 4) {
      p[dst] = b[src]!;
      p[dst + 1] = b[src + 1]!;
      p[dst + 2] = b[src + 2]!;
      p[dst + 3] = b[src + 3]!;
    }
  }
}

/**
 * C[0..M4, j0..j0+nc4] = A[0..M4, :] · (packed block), 4×4 blocks of C at a time.
 * One function holds the whole loop nest, so the speed does not hang on
 * whether V8 chooses to inline a separate micro-kernel.
 */
function panelProduct(
  a: Float32Array,
  p: Float32Array,
  c: Float32Array,
  K: number,
  N: number,
  M4: number,
  j0: number,
  nc4: number,
): void {
  const K2 = K & ~1;
  for (let i = 0; i < M4; i += 4) {
    const r0 = i * K, r1 = r0 + K, r2 = r1 + K, r3 = r2 + K;
    for (let jp = 0; jp < nc4; jp += 4) {
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
      let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
      let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
      let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
      let q = jp * K;
      let k = 0;
      for (; k < K2; k += 2, q += 8) {
        let b0 = p[q]!, b1 = p[q + 1]!, b2 = p[q + 2]!, b3 = p[q + 3]!;
        let x0 = a[r0 + k]!, x1 = a[r1 + k]!, x2 = a[r2 + k]!, x3 = a[r3 + k]!;
        c00 += x0 * b0; c01 += x0 * b1; c02 += x0 * b2; c03 += x0 * b3;
        c10 += x1 * b0; c11 += x1 * b1; c12 += x1 * b2; c13 += x1 * b3;
        c20 += x2 * b0; c21 += x2 * b1; c22 += x2 * b2; c23 += x2 * b3;
        c30 += x3 * b0; c31 += x3 * b1; c32 += x3 * b2; c33 += x3 * b3;
        b0 = p[q + 4]!; b1 = p[q + 5]!; b2 = p[q + 6]!; b3 = p[q + 7]!;
        x0 = a[r0 + k + 1]!; x1 = a[r1 + k + 1]!; x2 = a[r2 + k + 1]!; x3 = a[r3 + k + 1]!;
        c00 += x0 * b0; c01 += x0 * b1; c02 += x0 * b2; c03 += x0 * b3;
        c10 += x1 * b0; c11 += x1 * b1; c12 += x1 * b2; c13 += x1 * b3;
        c20 += x2 * b0; c21 += x2 * b1; c22 += x2 * b2; c23 += x2 * b3;
        c30 += x3 * b0; c31 += x3 * b1; c32 += x3 * b2; c33 += x3 * b3;
      }
      for (; k < K; k++, q += 4) {
        const b0 = p[q]!, b1 = p[q + 1]!, b2 = p[q + 2]!, b3 = p[q + 3]!;
        const x0 = a[r0 + k]!, x1 = a[r1 + k]!, x2 = a[r2 + k]!, x3 = a[r3 + k]!;
        c00 += x0 * b0; c01 += x0 * b1; c02 += x0 * b2; c03 += x0 * b3;
        c10 += x1 * b0; c11 += x1 * b1; c12 += x1 * b2; c13 += x1 * b3;
        c20 += x2 * b0; c21 += x2 * b1; c22 += x2 * b2; c23 += x2 * b3;
        c30 += x3 * b0; c31 += x3 * b1; c32 += x3 * b2; c33 += x3 * b3;
      }
      let o = i * N + j0 + jp;
      c[o] = c00; c[o + 1] = c01; c[o + 2] = c02; c[o + 3] = c03; o += N;
      c[o] = c10; c[o + 1] = c11; c[o + 2] = c12; c[o + 3] = c13; o += N;
      c[o] = c20; c[o + 1] = c21; c[o + 2] = c22; c[o + 3] = c23; o += N;
      c[o] = c30; c[o + 1] = c31; c[o + 2] = c32; c[o + 3] = c33;
    }
  }
}

/**
 * The rest of the column block: the columns past nc4 for rows above M4, then
 * the rows from M4 on (all of them when M < 4, e.g. a batch of one), i-k-j.
 */
function edges(
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  M: number,
  K: number,
  N: number,
  M4: number,
  j0: number,
  nc: number,
  nc4: number,
): void {
  const j1 = j0 + nc;
  for (let i = 0; i < M; i++) {
    const jStart = i < M4 ? j0 + nc4 : j0;
    if (jStart === j1) continue;
    const o = i * N;
    for (let j = jStart; j < j1; j++) c[o + j] = 0;
    for (let k = 0; k < K; k++) {
      const x = a[i * K + k]!;
      const r = k * N;
      for (let j = jStart; j < j1; j++) c[o + j]! += x * b[r + j]!;
    }
  }
}

/** The obvious triple loop (i-k-j order), to check gemm against. */
export function gemmReference(
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  M: number,
  K: number,
  N: number,
): void {
  const row = new Float64Array(N);
  for (let i = 0; i < M; i++) {
    row.fill(0);
    for (let k = 0; k < K; k++) {
      const x = a[i * K + k]!;
      for (let j = 0; j < N; j++) row[j]! += x * b[k * N + j]!;
    }
    for (let j = 0; j < N; j++) c[i * N + j] = row[j]!;
  }
}
