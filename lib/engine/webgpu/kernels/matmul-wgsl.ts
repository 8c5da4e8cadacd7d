/**
 * The WGSL of the tiled matmul (matmul.ts): one variant per (transposes, epilogue, tile), generated here, and
 * split-K's summing pass. See matmul.ts for what the kernel computes and how a workgroup tiles it.
 */
export type Epilogue = "none" | "bias" | "residual" | "gelu" | "geluGrad";

/** A tile shape: BM × BN outputs per workgroup, TM × TN per thread, BK deep per step. */
export interface Tile {
  bm: number;
  bn: number;
  tm: number;
  tn: number;
  bk: number;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
export const usesBias = (e: Epilogue) => e === "bias" || e === "residual" || e === "gelu";
export const usesX = (e: Epilogue) => e === "residual" || e === "gelu" || e === "geluGrad";

/** WGSL computing `y` from `accv` (the sum), as the epilogue wants; X at xBase with row stride P.ldx. */
const EPILOGUE: Record<Epilogue, string> = {
  none: "let y = accv * P.alpha;",
  bias: "let y = accv * P.alpha + Bias[P.biasOff + n];",
  residual: "let y = accv * P.alpha + Bias[P.biasOff + n] + X[xBase + m * P.ldx + n];",
  gelu: `let pre = accv * P.alpha + Bias[P.biasOff + n];
      X[xBase + m * P.ldx + n] = pre;
      let u = clamp(${SQRT_2_OVER_PI} * (pre + 0.044715 * pre * pre * pre), -15.0, 15.0);
      let y = 0.5 * pre * (1.0 + tanh(u));`,
  geluGrad: `let h = X[xBase + m * P.ldx + n];
      let u = clamp(${SQRT_2_OVER_PI} * (h + 0.044715 * h * h * h), -15.0, 15.0);
      let th = tanh(u);
      let d = 0.5 * (1.0 + th) + 0.5 * h * (1.0 - th * th) * ${SQRT_2_OVER_PI} * (1.0 + 3.0 * 0.044715 * h * h);
      let y = accv * P.alpha * d;`,
};

/** The K loop's inner step, strided ownership: thread (x, y) owns rows y + i·(BM/TM) and columns x + j·(BN/TN). */
const COMPUTE_STRIDED = (t: Tile, tx: number, ty: number) => `
    for (var kk = 0u; kk < ${t.bk}u; kk++) {
      var a: array<f32, ${t.tm}>;
      var b: array<f32, ${t.tn}>;
      for (var i = 0u; i < ${t.tm}u; i++) { a[i] = As[kk * ${t.bm}u + lid.y + i * ${ty}u]; }
      for (var j = 0u; j < ${t.tn}u; j++) { b[j] = Bs[kk * ${t.bn}u + lid.x + j * ${tx}u]; }
      for (var i = 0u; i < ${t.tm}u; i++) {
        for (var j = 0u; j < ${t.tn}u; j++) { acc[i][j] = fma(a[i], b[j], acc[i][j]); }
      }
    }`;

/**
 * The K loop's inner step, vec4 ownership: thread (x, y) owns TM/4 chunks of 4 rows, chunk c at
 * c·(BM / (TM/4)) + 4y, and likewise TN/4 chunks of 4 columns; one vec4 load per chunk per k.
 */
const COMPUTE_VEC4 = (t: Tile, tx: number, ty: number) => {
  const [mc, nc] = [t.tm / 4, t.tn / 4]; // chunks per thread
  const [ms, ns] = [t.bm / 4 / mc, t.bn / 4 / nc]; // vec4 stride between a thread's chunks (= threads along the axis)
  void tx;
  void ty;
  return `
    for (var kk = 0u; kk < ${t.bk}u; kk++) {
      var a: array<vec4<f32>, ${mc}>;
      var b: array<vec4<f32>, ${nc}>;
      for (var c = 0u; c < ${mc}u; c++) { a[c] = As[kk * ${t.bm / 4}u + c * ${ms}u + lid.y]; }
      for (var c = 0u; c < ${nc}u; c++) { b[c] = Bs[kk * ${t.bn / 4}u + c * ${ns}u + lid.x]; }
      for (var i = 0u; i < ${t.tm}u; i++) {
        let ai = a[i / 4u][i % 4u];
        for (var c = 0u; c < ${nc}u; c++) { acc[i][c] = fma(vec4<f32>(ai), b[c], acc[i][c]); }
      }
    }`;
};

/** The WGSL of one variant. */
export function matmulSource(transA: boolean, transB: boolean, epilogue: Epilogue, t: Tile): string {
  const tx = t.bn / t.tn; // threads along N
  const ty = t.bm / t.tm; // threads along M
  const threads = tx * ty;
  // with TM and TN multiples of 4, a thread owns chunks of 4 neighbouring rows and columns and reads them
  // from workgroup memory as vec4s: 2 vector loads feed 16 multiply-adds
  const vec = t.tm % 4 === 0 && t.tn % 4 === 0;
  const [hasBias, hasX] = [usesBias(epilogue), usesX(epilogue)];
  const xAccess = epilogue === "gelu" ? "read_write" : "read";
  // load op(A)[m, k] for the tile: neighbouring threads take neighbouring global words
  const loadA = transA
    ? `let k = l / ${t.bm}u; let m = l % ${t.bm}u;
        let gm = m0 + m; let gk = k0 + k;
        var v = 0.0; if (gm < P.M && gk < kEnd) { v = A[aBase + gk * P.lda + gm]; }`
    : `let k = l % ${t.bk}u; let m = l / ${t.bk}u;
        let gm = m0 + m; let gk = k0 + k;
        var v = 0.0; if (gm < P.M && gk < kEnd) { v = A[aBase + gm * P.lda + gk]; }`;
  const loadB = transB
    ? `let k = l % ${t.bk}u; let n = l / ${t.bk}u;
        let gn = n0 + n; let gk = k0 + k;
        var v = 0.0; if (gn < P.N && gk < kEnd) { v = B[bBase + gn * P.ldb + gk]; }`
    : `let k = l / ${t.bn}u; let n = l % ${t.bn}u;
        let gn = n0 + n; let gk = k0 + k;
        var v = 0.0; if (gn < P.N && gk < kEnd) { v = B[bBase + gk * P.ldb + gn]; }`;

  return /* wgsl */ `
struct Params {
  M: u32, N: u32, K: u32, lda: u32, ldb: u32, ldc: u32, ldx: u32, inner: u32,
  aOff: u32, aSo: u32, aSi: u32, bOff: u32, bSo: u32, bSi: u32, cOff: u32, cSo: u32,
  cSi: u32, xOff: u32, xSo: u32, xSi: u32, biasOff: u32, alpha: f32, beta: f32, kPer: u32, kSplit: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
${hasBias ? "@group(0) @binding(4) var<storage, read> Bias: array<f32>;" : ""}
${hasX ? `@group(0) @binding(${hasBias ? 5 : 4}) var<storage, ${xAccess}> X: array<f32>;` : ""}

${vec ? `var<workgroup> As: array<vec4<f32>, ${(t.bk * t.bm) / 4}>; // As[(k * BM + m) / 4][m % 4] = op(A)[m0 + m, k0 + k]
var<workgroup> Bs: array<vec4<f32>, ${(t.bk * t.bn) / 4}>; // Bs[(k * BN + n) / 4][n % 4] = op(B)[k0 + k, n0 + n]`
    : `var<workgroup> As: array<f32, ${t.bk * t.bm}>; // As[k * BM + m] = op(A)[m0 + m, k0 + k]
var<workgroup> Bs: array<f32, ${t.bk * t.bn}>; // Bs[k * BN + n] = op(B)[k0 + k, n0 + n]`}

@compute @workgroup_size(${tx}, ${ty})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let tid = lid.y * ${tx}u + lid.x;
  let m0 = wid.y * ${t.bm}u;
  let n0 = wid.x * ${t.bn}u;
  let zo = wid.z / P.inner;
  let zi = wid.z % P.inner;
  let aBase = P.aOff + zo * P.aSo + zi * P.aSi;
  let bBase = P.bOff + zo * P.bSo + zi * P.bSi;
  let cBase = P.cOff + zo * P.cSo + zi * P.cSi;
  ${hasX ? "let xBase = P.xOff + zo * P.xSo + zi * P.xSi;" : ""}
  ${vec ? `var acc: array<array<vec4<f32>, ${t.tn / 4}>, ${t.tm}>; // acc[i][jc][jj]: row i, column chunk jc, column jj` : `var acc: array<array<f32, ${t.tn}>, ${t.tm}>;`}
  // split-K (kSplit > 0): workgroup layer z sums k in [z·kPer, (z+1)·kPer) into its own slice of C
  let kBegin = wid.z * P.kSplit;
  let kEnd = min(P.K, kBegin + P.kPer);
  for (var k0 = kBegin; k0 < kEnd; k0 += ${t.bk}u) {
    for (var r = 0u; r < ${(t.bm * t.bk) / threads}u; r++) {
      let l = tid + r * ${threads}u;
      ${loadA}
      ${vec ? `As[(k * ${t.bm}u + m) / 4u][m % 4u] = v;` : `As[k * ${t.bm}u + m] = v;`}
    }
    for (var r = 0u; r < ${(t.bn * t.bk) / threads}u; r++) {
      let l = tid + r * ${threads}u;
      ${loadB}
      ${vec ? `Bs[(k * ${t.bn}u + n) / 4u][n % 4u] = v;` : `Bs[k * ${t.bn}u + n] = v;`}
    }
    workgroupBarrier();
    ${vec ? COMPUTE_VEC4(t, tx, ty) : COMPUTE_STRIDED(t, tx, ty)}
    workgroupBarrier();
  }
  for (var i = 0u; i < ${t.tm}u; i++) {
    let m = m0 + ${vec ? `(i / 4u) * ${t.bm / (t.tm / 4)}u + lid.y * 4u + i % 4u` : `lid.y + i * ${ty}u`};
    if (m >= P.M) { continue; }
    for (var j = 0u; j < ${t.tn}u; j++) {
      let n = n0 + ${vec ? `(j / 4u) * ${t.bn / (t.tn / 4)}u + lid.x * 4u + j % 4u` : `lid.x + j * ${tx}u`};
      if (n >= P.N) { continue; }
      let accv = ${vec ? "acc[i][j / 4u][j % 4u]" : "acc[i][j]"};
      ${EPILOGUE[epilogue]}
      let at = cBase + m * P.ldc + n;
      if (P.beta != 0.0) { C[at] = y + P.beta * C[at]; } else { C[at] = y; }
    }
  }
}`;
}

/** WGSL of split-K's second pass: C = epilogue(alpha · Σ_s partial_s) [+ beta · C], one thread per value. */
export function reduceSource(epilogue: Epilogue): string {
  const [hasBias, hasX] = [usesBias(epilogue), usesX(epilogue)];
  return /* wgsl */ `
struct Params { M: u32, N: u32, S: u32, ldc: u32, cOff: u32, ldx: u32, xOff: u32, biasOff: u32, alpha: f32, beta: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Part: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
${hasBias ? "@group(0) @binding(3) var<storage, read> Bias: array<f32>;" : ""}
${hasX ? `@group(0) @binding(${hasBias ? 4 : 3}) var<storage, ${epilogue === "gelu" ? "read_write" : "read"}> X: array<f32>;` : ""}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * 256u + gid.x;
  if (i >= P.M * P.N) { return; }
  let m = i / P.N;
  let n = i % P.N;
  let xBase = P.xOff;
  var accv = 0.0;
  for (var s = 0u; s < P.S; s++) { accv += Part[s * P.M * P.N + i]; }
  ${EPILOGUE[epilogue]}
  let at = P.cOff + m * P.ldc + n;
  if (P.beta != 0.0) { C[at] = y + P.beta * C[at]; } else { C[at] = y; }
}`;
}

