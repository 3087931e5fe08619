// kanpde: compiled CPU kernels for KAN layers, built on first use by kanpde/models/_native.py.
// Each replaces a pure-torch node of kanpde/models/kan.py, and tests/test_native.py checks each
// pair against each other:
//   forward / backward            second-order jet of a wide layer, row-product form (_RowJet)
//   edge_forward / edge_backward  second-order jet of an edge-by-edge layer (_EdgeJet)
//   planar_adjoint                table adjoint of edge splines in nested autograd (_planar_adjoint)
//   row_spmm / row_sddmm / row_spmmt  wide layers' row products in nested autograd (_spmm, ...)
// and kan_sums.cpp, compiled after this file in the same module, the edge sums of nested autograd.
//
// Wide layers.  Layer input h (N, I) with gradient and Hessian-diagonal channels g, s (N, I, D) (any
// strides).  Input p of point n lies in block blk[n, p] with local coordinate u[n, p] and
// du/dh = ih[n, p]; the block's K1 table rows (R, O) hold the coefficients of the k + 1 powers
// u^m and, with a base branch, one more row for the base activation b(h) (derivatives
// bder[r, n, p]).  The basis values' h-derivatives are
//   Q_r[m] = m! / (m - r)! u^(m - r) ih^r  (m <= k),   Q_r[k + 1] = b^(r)(h),
// and the channel weights c[0] = Q_0, c[1 + d] = Q_1 g_d, c[1 + D + d] = Q_2 g_d^2 + Q_1 s_d.
// forward: out[n, c, q] = sum_{p, m} c[n, p, m, c] table[blk[n, p] * K1 + m, q] for the 1 + 2D
//   channels (value, gradient, Hessian diagonal), returned as three tensors;
// backward: the gradients in h, g, s and the table, for gradients of those three outputs.
// One pass per point; points are split over torch's intra-op threads (table adjoint: one
// partial table per thread, summed in a fixed order, so results repeat for a thread count).

#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <vector>

namespace {

constexpr int kMaxK1 = 10;  // spline order up to 8, plus the base row

struct Strides { int64_t n, p, d; };

// m! / (m - r)! (0 for m < r)
constexpr double falling(int m, int r) { return r == 0 ? 1.0 : m < r ? 0.0 : m * falling(m - 1, r - 1); }

// falling(m, r) for r = 0..3 as a table, for loops over runtime orders
struct FallingTable {
  double v[4][kMaxK1];
  constexpr FallingTable() : v() {
    for (int r = 0; r < 4; ++r)
      for (int m = 0; m < kMaxK1; ++m) v[r][m] = falling(m, r);
  }
};
constexpr FallingTable kFall{};

// A gradient summed over the points, which parallel_for splits over torch's threads: each thread
// adds into its own zeroed copy (with one thread, into `out` itself), and finish() sums the
// copies in thread order, so the result repeats for a thread count.  `out` nullptr: not wanted.
template <typename T>
struct ThreadSums {
  T* out;
  int64_t size;
  int nt;
  std::vector<T> part;
  ThreadSums(T* out_, int64_t size_) : out(out_), size(size_), nt(at::get_num_threads()) {
    if (!out) return;
    if (nt == 1) std::fill(out, out + size, T(0));
    else part.assign((size_t)nt * size, T(0));
  }
  // this thread's array (call inside parallel_for)
  T* mine() { return !out ? nullptr : nt == 1 ? out : part.data() + (size_t)at::get_thread_num() * size; }
  void finish() {
    if (!out || nt == 1) return;
    at::parallel_for(0, size, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        T acc = 0;
        for (int t = 0; t < nt; ++t) acc += part[(size_t)t * size + i];
        out[i] = acc;
      }
    });
  }
};

template <typename T>
struct Args {
  const T *u, *ih, *bder, *g, *s, *table;
  const int64_t* blk;
  Strides gs, ss;
  int64_t N, I, K1, O, R, k, bstride;  // R table rows; bstride = N * I (between bder's orders)
  int64_t ih_n;  // ih's point stride: I, or 0 on a uniform grid (one du/dh per input)
  bool base;
};

// Per-thread scratch of point_weights (all sized for one point, inputs innermost).
template <typename T>
struct Scratch {
  std::vector<T> cw, Q, pw, ihp, gt;
  std::vector<int64_t> rows;
  Scratch(int64_t I, int64_t K1, int C, int D)
      : cw(K1 * C * I), Q(4 * K1 * I), pw(K1 * I), ihp(4 * I), gt(2 * D * I), rows(I) {}
};

// Basis derivatives Q[r, m, p] (r = 0..3) and channel weights cw[m, c, p] of point n, with the
// inputs p innermost so every loop runs over contiguous numbers of all inputs at once.
template <typename T, int D>
inline void point_weights(const Args<T>& a, int64_t n, Scratch<T>& w, int orders /* 3, or 4 for Q_3 */) {
  constexpr int C = 1 + 2 * D;
  const int64_t I = a.I, K1 = a.K1;
  const int k = (int)a.k;
  const T* un = a.u + n * I;
  const T* ihn = a.ih + n * a.ih_n;
  T* pw = w.pw.data();
  T* ihp = w.ihp.data();
  T* Q = w.Q.data();
  for (int64_t p = 0; p < I; ++p) { pw[p] = 1; ihp[p] = 1; w.rows[p] = a.blk[n * I + p] * K1 * a.O; }
  for (int m = 1; m <= k; ++m)
#pragma omp simd
    for (int64_t p = 0; p < I; ++p) pw[m * I + p] = pw[(m - 1) * I + p] * un[p];
  for (int r = 1; r < orders; ++r)
#pragma omp simd
    for (int64_t p = 0; p < I; ++p) ihp[r * I + p] = ihp[(r - 1) * I + p] * ihn[p];
  for (int r = 0; r < orders; ++r) {
    for (int m = 0; m <= k; ++m) {
      T* q = Q + (r * K1 + m) * I;
      if (m < r) {
        for (int64_t p = 0; p < I; ++p) q[p] = 0;
        continue;
      }
      const T f = (T)kFall.v[r][m];
      const T* pwm = pw + (m - r) * I;
      const T* ih = ihp + r * I;
#pragma omp simd
      for (int64_t p = 0; p < I; ++p) q[p] = f * pwm[p] * ih[p];
    }
    if (a.base) {
      const T* b = a.bder + r * a.bstride + n * I;
      T* q = Q + (r * K1 + k + 1) * I;
      for (int64_t p = 0; p < I; ++p) q[p] = b[p];
    }
  }
  T* gt = w.gt.data();  // g_d[p], s_d[p]
  for (int64_t p = 0; p < I; ++p)
    for (int d = 0; d < D; ++d) {
      gt[d * I + p] = a.g[n * a.gs.n + p * a.gs.p + d * a.gs.d];
      gt[(D + d) * I + p] = a.s[n * a.ss.n + p * a.ss.p + d * a.ss.d];
    }
  T* cw = w.cw.data();
  for (int64_t m = 0; m < K1; ++m) {
    const T* q0 = Q + m * I;
    const T* q1 = Q + (K1 + m) * I;
    const T* q2 = Q + (2 * K1 + m) * I;
    T* c = cw + m * C * I;
#pragma omp simd
    for (int64_t p = 0; p < I; ++p) c[p] = q0[p];
    for (int d = 0; d < D; ++d) {
      const T* gd = gt + d * I;
      const T* sd = gt + (D + d) * I;
      T* cg = c + (1 + d) * I;
      T* cs = c + (1 + D + d) * I;
#pragma omp simd
      for (int64_t p = 0; p < I; ++p) {
        cg[p] = q1[p] * gd[p];
        cs[p] = q2[p] * gd[p] * gd[p] + q1[p] * sd[p];
      }
    }
  }
}

// Output columns are processed in blocks of B (one 64-byte vector), so the C accumulators of a
// block stay in registers while the point's table rows stream through.
template <typename T>
struct Block { static constexpr int B = 64 / sizeof(T); };

// The C channels of point n live in three tensors: value (N, O), gradient and Hessian diagonal
// (N, D, O); channel_ptr gives the start of channel ci's O numbers.
template <typename T, int D>
inline T* channel_ptr(T* v, T* g, T* h, int64_t n, int ci, int64_t O) {
  if (ci == 0) return v + n * O;
  if (ci <= D) return g + (n * D + ci - 1) * O;
  return h + (n * D + ci - 1 - D) * O;
}

// Output columns qb .. qb + nb of one point: acc[c] = sum_{p, m} cw[m, c, p] * table row (p, m).
// Full = B: a whole vector of columns with a compile-time width; 0: a shorter tail.
template <typename T, int C, int Full>
inline void row_block(const Args<T>& a, const T* cw, const int64_t* rows, int64_t qb, int64_t nb, T** o) {
  constexpr int B = Block<T>::B;
  const int64_t I = a.I, K1 = a.K1, O = a.O;
  T acc[C][B];
  for (int ci = 0; ci < C; ++ci)
    for (int j = 0; j < B; ++j) acc[ci][j] = 0;
  for (int64_t p = 0; p < I; ++p) {
    const T* row = a.table + rows[p] + qb;
    for (int64_t m = 0; m < K1; ++m, row += O)
      for (int ci = 0; ci < C; ++ci) {
        const T w = cw[(m * C + ci) * I + p];
        if (Full) {
#pragma omp simd
          for (int j = 0; j < Full; ++j) acc[ci][j] += w * row[j];
        } else {
          for (int64_t j = 0; j < nb; ++j) acc[ci][j] += w * row[j];
        }
      }
  }
  for (int ci = 0; ci < C; ++ci)
    for (int64_t j = 0; j < nb; ++j) o[ci][qb + j] = acc[ci][j];
}

template <typename T, int D>
void jet_forward(const Args<T>& a, T* ov, T* og, T* oh) {
  constexpr int C = 1 + 2 * D;
  constexpr int B = Block<T>::B;
  const int64_t I = a.I, K1 = a.K1, O = a.O;
  at::parallel_for(0, a.N, 16, [&](int64_t begin, int64_t end) {
    Scratch<T> sc(I, K1, C, D);
    const T* cw = sc.cw.data();
    const int64_t* rows = sc.rows.data();
    for (int64_t n = begin; n < end; ++n) {
      point_weights<T, D>(a, n, sc, 3);
      T* o[C];
      for (int ci = 0; ci < C; ++ci) o[ci] = channel_ptr<T, D>(ov, og, oh, n, ci, O);
      for (int64_t qb = 0; qb < O; qb += B) {
        if (O - qb >= B)
          row_block<T, C, B>(a, cw, rows, qb, B, o);
        else
          row_block<T, C, 0>(a, cw, rows, qb, O - qb, o);
      }
    }
  });
}

template <typename T, int D>
void jet_backward(const Args<T>& a, const T* gv, Strides gvs, const T* gg, Strides ggs, const T* gh,
                  Strides ghs, T* dh, T* dg, T* ds, T* dtab) {
  constexpr int C = 1 + 2 * D;
  constexpr int B = Block<T>::B;
  const int64_t I = a.I, K1 = a.K1, O = a.O;
  ThreadSums<T> tab(dtab, a.R * O);
  const bool need_x = dh || dg || ds;
  // the table transposed, (O, R + B) with zero padding, for the dot products of the x adjoints
  const int64_t rpad = a.R + B;
  std::vector<T> tt(need_x && K1 <= B ? (size_t)O * rpad : 0, T(0));
  if (!tt.empty())
    for (int64_t r = 0; r < a.R; ++r)
      for (int64_t q = 0; q < O; ++q) tt[q * rpad + r] = a.table[r * O + q];
  at::parallel_for(0, a.N, 16, [&](int64_t begin, int64_t end) {
    T* dt = tab.mine();
    Scratch<T> sc(I, K1, C, D);
    std::vector<T> w(K1 * C), gorow(C * O);
    const T* cw = sc.cw.data();
    const T* Q = sc.Q.data();
    const int64_t* rows = sc.rows.data();
    for (int64_t n = begin; n < end; ++n) {
      point_weights<T, D>(a, n, sc, 4);
      T* go = gorow.data();  // the output gradients of point n as contiguous (C, O); absent: 0
      for (int64_t q = 0; q < O; ++q) go[q] = gv ? gv[n * gvs.n + q * gvs.p] : T(0);
      for (int d = 0; d < D; ++d)
        for (int64_t q = 0; q < O; ++q) {
          go[(1 + d) * O + q] = gg ? gg[n * ggs.n + q * ggs.p + d * ggs.d] : T(0);
          go[(1 + D + d) * O + q] = gh ? gh[n * ghs.n + q * ghs.p + d * ghs.d] : T(0);
        }
      if (dt) {  // table rows (p, m) += sum_c cw[p, m, c] gout[c]
        for (int64_t qb = 0; qb < O; qb += B) {
          const int64_t nb = O - qb < B ? O - qb : B;
          T gb[C][B];
          for (int ci = 0; ci < C; ++ci)
            for (int j = 0; j < B; ++j) gb[ci][j] = j < nb ? go[ci * O + qb + j] : T(0);
          for (int64_t p = 0; p < I; ++p) {
            T* drow = dt + rows[p] + qb;
            for (int64_t m = 0; m < K1; ++m, drow += O) {
              const T* c = cw + m * C * I + p;  // c[ci * I] = cw[m, ci, p]
              T t[B];
#pragma omp simd
              for (int j = 0; j < B; ++j) t[j] = c[0] * gb[0][j];
              for (int ci = 1; ci < C; ++ci) {
                const T cc = c[ci * I];
#pragma omp simd
                for (int j = 0; j < B; ++j) t[j] += cc * gb[ci][j];
              }
              if (nb == B) {
#pragma omp simd
                for (int j = 0; j < B; ++j) drow[j] += t[j];
              } else {
                for (int64_t j = 0; j < nb; ++j) drow[j] += t[j];
              }
            }
          }
        }
      }
      if (!need_x) continue;
      for (int64_t p = 0; p < I; ++p) {
        const int64_t np = n * a.I + p;
        const T* row = a.table + rows[p];
        if (K1 <= B) {
          // w[m, c] = <gout[c], table row (p, m)> for all m at once from the transposed table,
          // where the block's K1 rows are K1 consecutive numbers of each column: no horizontal sums
          T acc[C][B];
          for (int ci = 0; ci < C; ++ci)
            for (int j = 0; j < B; ++j) acc[ci][j] = 0;
          const T* col = tt.data() + rows[p] / O;
          for (int64_t q = 0; q < O; ++q, col += rpad)
            for (int ci = 0; ci < C; ++ci) {
              const T gq = go[ci * O + q];
#pragma omp simd
              for (int j = 0; j < B; ++j) acc[ci][j] += gq * col[j];
            }
          for (int64_t m = 0; m < K1; ++m)
            for (int ci = 0; ci < C; ++ci) w[m * C + ci] = acc[ci][m];
        } else {
          for (int64_t m = 0; m < K1; ++m, row += O)
            for (int ci = 0; ci < C; ++ci) {
              const T* gc = go + ci * O;
              T sum = 0;
              for (int64_t q = 0; q < O; ++q) sum += gc[q] * row[q];
              w[m * C + ci] = sum;
            }
        }
        T gd[D], g2[D], sd[D];
        for (int d = 0; d < D; ++d) {
          gd[d] = a.g[n * a.gs.n + p * a.gs.p + d * a.gs.d];
          sd[d] = a.s[n * a.ss.n + p * a.ss.p + d * a.ss.d];
          g2[d] = gd[d] * gd[d];
        }
        T a_h = 0, a_g[D], a_s[D];
        for (int d = 0; d < D; ++d) { a_g[d] = 0; a_s[d] = 0; }
        for (int64_t m = 0; m < K1; ++m) {
          const T* wm = w.data() + m * C;
          const T q1 = Q[(K1 + m) * I + p], q2 = Q[(2 * K1 + m) * I + p], q3 = Q[(3 * K1 + m) * I + p];
          a_h += q1 * wm[0];
          for (int d = 0; d < D; ++d) {
            const T wg = wm[1 + d], ws = wm[1 + D + d];
            a_h += q2 * gd[d] * wg + (q3 * g2[d] + q2 * sd[d]) * ws;
            a_g[d] += q1 * wg + 2 * q2 * gd[d] * ws;
            a_s[d] += q1 * ws;
          }
        }
        if (dh) dh[np] = a_h;
        for (int d = 0; d < D; ++d) {
          if (dg) dg[np * D + d] = a_g[d];
          if (ds) ds[np * D + d] = a_s[d];
        }
      }
    }
  });
  tab.finish();
}

template <typename T>
Args<T> make_args(const torch::Tensor& u, const torch::Tensor& ih, const torch::Tensor& bder,
                  const torch::Tensor& g, const torch::Tensor& s, const torch::Tensor& blk,
                  const torch::Tensor& table, int64_t k) {
  Args<T> a;
  a.N = u.size(0); a.I = u.size(1); a.O = table.size(1); a.R = table.size(0); a.k = k;
  a.base = bder.defined() && bder.dim() == 3;  // (4, N, I); no base branch: an empty 1-D tensor
  a.K1 = k + 1 + (a.base ? 1 : 0);
  a.bstride = a.N * a.I;
  a.u = u.data_ptr<T>(); a.ih = ih.data_ptr<T>(); a.bder = a.base ? bder.data_ptr<T>() : nullptr;
  a.ih_n = ih.stride(0);
  a.g = g.data_ptr<T>(); a.s = s.data_ptr<T>(); a.table = table.data_ptr<T>(); a.blk = blk.data_ptr<int64_t>();
  a.gs = {g.stride(0), g.stride(1), g.stride(2)};
  a.ss = {s.stride(0), s.stride(1), s.stride(2)};
  return a;
}

void check(const torch::Tensor& u, const torch::Tensor& ih, const torch::Tensor& bder, const torch::Tensor& g,
           const torch::Tensor& s, const torch::Tensor& blk, const torch::Tensor& table, int64_t k) {
  TORCH_CHECK(k >= 1 && k + 2 <= kMaxK1, "jet kernel: spline order must be 1..", kMaxK1 - 2, ", got ", k);
  TORCH_CHECK(u.is_contiguous() && blk.is_contiguous() && table.is_contiguous(),
              "jet kernel: u, blk and table must be contiguous");
  TORCH_CHECK(ih.dim() == 2 && ih.size(1) == u.size(1) && ih.stride(1) == 1 &&
                  (ih.stride(0) == 0 || (ih.stride(0) == u.size(1) && ih.size(0) == u.size(0))),
              "jet kernel: ih must be contiguous (N, I) or broadcast from (1, I)");
  TORCH_CHECK(!bder.defined() || bder.dim() != 3 || (bder.is_contiguous() && bder.size(0) >= 4),
              "jet kernel: bder must be a contiguous (4, N, I) tensor");
  TORCH_CHECK(blk.sizes() == u.sizes(), "jet kernel: u and blk shapes differ");
  TORCH_CHECK(g.size(0) == u.size(0) && g.size(1) == u.size(1) && s.sizes() == g.sizes(),
              "jet kernel: g and s must be (N, I, D)");
  const int64_t K1 = k + 1 + ((bder.defined() && bder.dim() == 3) ? 1 : 0);
  TORCH_CHECK(table.size(0) % K1 == 0, "jet kernel: table rows are not a multiple of ", K1);
}


// ---------------------------------------------------------------------------------------
// Edge-by-edge layers (narrow: in * out * (k + 1) small), the counterpart of _EdgeJet.
// Everything is in planes with the points innermost, and a tile of L points is one set of
// SIMD lanes: each loop below runs over the points of a tile, with gathered table entries.
// Input p of point n: block blk[p, n], coordinate u[p, n], du/dh ih[p, n] (stride 0 along n
// on a uniform grid).  Edge p -> q has h-derivatives
//   phi_r[q, p] = sum_{m >= r} m!/(m - r)! table[blk * K1 + m, q] u^(m - r) ih^r + wb[q, p] b^(r)(h)
// (K1 = k + 1; no base row in this table).  Channels g, s: (I, D, N); with `first` the layer
// input is the network input (g the identity, s = 0, D = I).
//   value[q] = sum_p phi_0,  grad[q, d] = sum_p phi_1 g[p, d],
//   hess[q, d] = sum_p phi_2 g[p, d]^2 + phi_1 s[p, d]   (first: grad[q, p] = phi_1, hess = phi_2)

constexpr int64_t kTile = 64;
// derivative directions one edge-kernel call carries past the input layer (its per-direction
// adjoint lanes live on the stack); kanpde/models/kan/jets.py cuts wider jets into chunks
constexpr int kMaxEdgeD = 16;

// Base activations: b^(r)(z) from z and aux = sigma(z) (silu) or tanh(z) (tanh).
enum BaseKind { kNone = 0, kSilu = 1, kTanh = 2, kIdentity = 3 };

template <typename T>
struct EdgeArgs {
  const T *u, *ih, *z, *aux, *wb, *g, *s, *table;
  const int64_t* blk;
  int64_t N, I, O, D, k, ih_p, ih_n;  // ih strides (input, point)
  int kind;
  bool base, first;
};

// One tile of points at one input: coordinates, du/dh (one number on a uniform grid), the
// table row offsets and the base activation's derivatives b^(r), r <= 3.
template <typename T>
struct EdgeLanes {
  const T *u, *ih;
  T b[4][kTile];
  T ih0;
  bool uniform;
  int64_t row[kTile];
  int64_t nl;
  inline T dudh(int64_t l) const { return uniform ? ih0 : ih[l]; }
};

template <typename T, int K>
inline void edge_lanes(const EdgeArgs<T>& a, int64_t p, int64_t n0, int64_t nl, EdgeLanes<T>& e) {
  e.nl = nl;
  e.u = a.u + p * a.N + n0;
  e.ih = a.ih + p * a.ih_p + n0 * a.ih_n;
  e.uniform = a.ih_n == 0;
  e.ih0 = e.ih[0];
  const int64_t* bn = a.blk + p * a.N + n0;
  const int64_t K1O = (K + 1) * a.O;
#pragma omp simd
  for (int64_t l = 0; l < nl; ++l) e.row[l] = bn[l] * K1O;
  if (!a.base) return;
  const T* z = a.z + p * a.N + n0;
  const T* v = a.aux + p * a.N + n0;
  T *b0 = e.b[0], *b1 = e.b[1], *b2 = e.b[2], *b3 = e.b[3];
  if (a.kind == kSilu) {
    // s = sigma(z), s1 = s (1 - s), w = 1 - 2 s: silu = z s, silu' = s + z s1,
    // silu'' = s1 (2 + z w), silu''' = s1 (w (3 + z w) - 2 z s1)
#pragma omp simd
    for (int64_t l = 0; l < nl; ++l) {
      const T x = z[l], sg = v[l], d = sg - sg * sg, w = 1 - 2 * sg, zw = x * w;
      b0[l] = x * sg;
      b1[l] = sg + x * d;
      b2[l] = d * (2 + zw);
      b3[l] = d * (w * (3 + zw) - 2 * x * d);
    }
  } else if (a.kind == kTanh) {
    // t = tanh(z), t1 = 1 - t^2: derivatives t1, -2 t t1, -2 t1 (t1 - 2 t^2)
#pragma omp simd
    for (int64_t l = 0; l < nl; ++l) {
      const T t = v[l], d = 1 - t * t;
      b0[l] = t;
      b1[l] = d;
      b2[l] = -2 * t * d;
      b3[l] = -2 * d * (d - 2 * t * t);
    }
  } else {  // identity
#pragma omp simd
    for (int64_t l = 0; l < nl; ++l) { b0[l] = z[l]; b1[l] = 1; b2[l] = 0; b3[l] = 0; }
  }
}

// phi_{R0}, phi_{R0+1}, phi_{R0+2} of edge p -> q on a tile: the K + 1 table entries of each
// point are gathered once from column q (`col`), and the three derivatives are formed from
// them by Horner's scheme in u, then scaled by (du/dh)^r and given the base term w b^(r).
template <typename T, int K, int R0>
inline void edge_phi(const T* col, int64_t O, const EdgeLanes<T>& e, bool base, T w, T* ph0, T* ph1, T* ph2) {
  const int64_t nl = e.nl;
#pragma omp simd
  for (int64_t l = 0; l < nl; ++l) {
    const T* c = col + e.row[l];
    const T x = e.u[l];
    T a0 = 0, a1 = 0, a2 = 0;
#pragma GCC unroll 10
    for (int m = K; m >= 0; --m) {
      const T cm = c[m * O];
      if (m >= R0) a0 = a0 * x + (T)falling(m, R0) * cm;
      if (m >= R0 + 1) a1 = a1 * x + (T)falling(m, R0 + 1) * cm;
      if (m >= R0 + 2) a2 = a2 * x + (T)falling(m, R0 + 2) * cm;
    }
    const T h1 = e.dudh(l), h2 = h1 * h1;
    if (R0 == 1) { a0 *= h1; a1 *= h2; a2 *= h2 * h1; }
    else { a1 *= h1; a2 *= h2; }
    if (base) {
      a0 += w * e.b[R0][l];
      a1 += w * e.b[R0 + 1][l];
      a2 += w * e.b[R0 + 2][l];
    }
    ph0[l] = a0; ph1[l] = a1; ph2[l] = a2;
  }
}

template <typename T, int K>
void edge_forward_impl(const EdgeArgs<T>& a, T* ov, T* og, T* oh) {
  const int64_t N = a.N, I = a.I, O = a.O, D = a.D;
  const int64_t tiles = (N + kTile - 1) / kTile;
  at::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
    EdgeLanes<T> e;
    T p0[kTile], p1[kTile], p2[kTile];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n0 = t * kTile, nl = std::min(kTile, N - n0);
      for (int64_t p = 0; p < I; ++p) {
        edge_lanes<T, K>(a, p, n0, nl, e);
        for (int64_t q = 0; q < O; ++q) {
          // an input layer's phi_1, phi_2 are its gradient and Hessian channels: written in place
          T* d1 = a.first ? og + (q * D + p) * N + n0 : p1;
          T* d2 = a.first ? oh + (q * D + p) * N + n0 : p2;
          edge_phi<T, K, 0>(a.table + q, O, e, a.base, a.base ? a.wb[q * I + p] : T(0), p0, d1, d2);
          T* v = ov + q * N + n0;
          if (p == 0) {
#pragma omp simd
            for (int64_t l = 0; l < nl; ++l) v[l] = p0[l];
          } else {
#pragma omp simd
            for (int64_t l = 0; l < nl; ++l) v[l] += p0[l];
          }
          if (a.first) continue;
          for (int64_t d = 0; d < D; ++d) {
            const T* gd = a.g + (p * D + d) * N + n0;
            const T* sd = a.s + (p * D + d) * N + n0;
            T* gr = og + (q * D + d) * N + n0;
            T* hs = oh + (q * D + d) * N + n0;
            if (p == 0) {
#pragma omp simd
              for (int64_t l = 0; l < nl; ++l) {
                gr[l] = p1[l] * gd[l];
                hs[l] = p2[l] * gd[l] * gd[l] + p1[l] * sd[l];
              }
            } else {
#pragma omp simd
              for (int64_t l = 0; l < nl; ++l) {
                gr[l] += p1[l] * gd[l];
                hs[l] += p2[l] * gd[l] * gd[l] + p1[l] * sd[l];
              }
            }
          }
        }
      }
    }
  });
}

// Gradients of edge_forward_impl's outputs gv (O, N), gg and gh (O, D, N) (nullptr: zero) ->
// dh (I, N), dg and ds (I, D, N) (not with `first`), dtab (R, O), dwb (O, I) (nullptr: not
// wanted).  The table and base-weight adjoints are summed per thread, then over the threads
// in a fixed order (with one thread, in place), so results repeat for a thread count.
template <typename T, int K>
void edge_backward_impl(const EdgeArgs<T>& a, int64_t R, const T* gv, const T* gg, const T* gh, T* dh, T* dg,
                        T* ds, T* dtab, T* dwb) {
  const int64_t N = a.N, I = a.I, O = a.O, D = a.D;
  const int64_t tiles = (N + kTile - 1) / kTile;
  ThreadSums<T> tab(dtab, R * O), wsum(dwb, O * I);
  at::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
    T* dt = tab.mine();
    T* dw = wsum.mine();
    EdgeLanes<T> e;
    T zero[kTile], p1[kTile], p2[kTile], p3[kTile], d1[kTile], d2[kTile], ah[kTile], ag[kMaxEdgeD][kTile],
        as[kMaxEdgeD][kTile];
    T cm[K + 1][kTile];
    for (int64_t l = 0; l < kTile; ++l) zero[l] = 0;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n0 = t * kTile, nl = std::min(kTile, N - n0);
      for (int64_t p = 0; p < I; ++p) {
        edge_lanes<T, K>(a, p, n0, nl, e);
        // the x adjoints accumulate in place (scratch lanes where one is not wanted)
        T* ahp = dh ? dh + p * N + n0 : ah;
        T* agp[kMaxEdgeD];
        T* asp[kMaxEdgeD];
        for (int64_t l = 0; l < nl; ++l) ahp[l] = 0;
        if (!a.first)
          for (int64_t d = 0; d < D; ++d) {
            agp[d] = dg ? dg + (p * D + d) * N + n0 : ag[d];
            asp[d] = ds ? ds + (p * D + d) * N + n0 : as[d];
            for (int64_t l = 0; l < nl; ++l) { agp[d][l] = 0; asp[d][l] = 0; }
          }
        for (int64_t q = 0; q < O; ++q) {
          edge_phi<T, K, 1>(a.table + q, O, e, a.base, a.base ? a.wb[q * I + p] : T(0), p1, p2, p3);
          const T* gq = gv ? gv + q * N + n0 : zero;
          // r1, r2: d loss / d phi_1, d phi_2 of edge p -> q
          const T *r1 = d1, *r2 = d2;
          if (a.first) {
            r1 = gg ? gg + (q * D + p) * N + n0 : zero;
            r2 = gh ? gh + (q * D + p) * N + n0 : zero;
          } else {
            for (int64_t l = 0; l < nl; ++l) { d1[l] = 0; d2[l] = 0; }
            for (int64_t d = 0; d < D; ++d) {
              const T* gd = a.g + (p * D + d) * N + n0;
              const T* sd = a.s + (p * D + d) * N + n0;
              const T* x = gg ? gg + (q * D + d) * N + n0 : zero;
              const T* y = gh ? gh + (q * D + d) * N + n0 : zero;
              T* agd = agp[d];
              T* asd = asp[d];
#pragma omp simd
              for (int64_t l = 0; l < nl; ++l) {
                d1[l] += x[l] * gd[l] + y[l] * sd[l];
                d2[l] += y[l] * gd[l] * gd[l];
                agd[l] += p1[l] * x[l] + 2 * gd[l] * p2[l] * y[l];
                asd[l] += p1[l] * y[l];
              }
            }
          }
          if (dh)
#pragma omp simd
            for (int64_t l = 0; l < nl; ++l) ahp[l] += gq[l] * p1[l] + r1[l] * p2[l] + r2[l] * p3[l];
          if (dt) {
            // table rows blk * (K + 1) + m, column q: += gv Q_0[m] + r1 Q_1[m] + r2 Q_2[m], with
            // Q_r[m] = m!/(m - r)! u^(m - r) (du/dh)^r; the entries of a point are scattered
            // one by one (points of a tile may share a block)
#pragma omp simd
            for (int64_t l = 0; l < nl; ++l) {
              const T x = e.u[l], ih = e.dudh(l), e1 = r1[l] * ih, e2 = r2[l] * ih * ih;
              T w0 = 1, w1 = 0, w2 = 0;  // u^m, m u^(m-1), m (m-1) u^(m-2)
#pragma GCC unroll 10
              for (int m = 0; m <= K; ++m) {
                cm[m][l] = gq[l] * w0 + e1 * w1 + e2 * w2;
                w2 = w2 * x + 2 * w1;
                w1 = w1 * x + w0;
                w0 = w0 * x;
              }
            }
            T* col = dt + q;
            for (int64_t l = 0; l < nl; ++l) {
              T* c = col + e.row[l];
#pragma GCC unroll 10
              for (int m = 0; m <= K; ++m) c[m * O] += cm[m][l];
            }
          }
          if (dw) {
            const T *b0 = e.b[0], *b1 = e.b[1], *b2 = e.b[2];
            T acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int64_t l = 0; l < nl; ++l) acc += gq[l] * b0[l] + r1[l] * b1[l] + r2[l] * b2[l];
            dw[q * I + p] += acc;
          }
        }
      }
    }
  });
  tab.finish();
  wsum.finish();
}

// Adjoint of the edge splines' derivatives in the table (_planar_adjoint in kan.py): given
// planes d_i[q, p, n] for derivative orders r_i (strides sq, sp along q and p; points
// contiguous), table row blk[p, n] * (K + 1) + m, column q receives
//   sum_i d_i[q, p, n] m!/(m - r_i)! u^(m - r_i) (du/dh)^(r_i).
// Summed over the threads with ThreadSums.
template <typename T>
struct PlanarTerm { const T* d; int64_t sq, sp; int r; };

template <typename T, int K>
void planar_adjoint_impl(const T* u, const T* ih, int64_t ih_p, int64_t ih_n, const int64_t* blk,
                         const std::vector<PlanarTerm<T>>& terms, int64_t I, int64_t N, int64_t O, int64_t R,
                         T* out) {
  const int64_t tiles = (N + kTile - 1) / kTile;
  ThreadSums<T> tab(out, R * O);
  const int nterm = (int)terms.size();
  at::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
    T* dt = tab.mine();
    T pw[K + 1][kTile], ihr[4][kTile], cm[K + 1][kTile], e[4][kTile];
    int64_t row[kTile];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n0 = t * kTile, nl = std::min(kTile, N - n0);
      for (int64_t p = 0; p < I; ++p) {
        const T* un = u + p * N + n0;
        const T* ihn = ih + p * ih_p + n0 * ih_n;
        const int64_t* bn = blk + p * N + n0;
#pragma omp simd
        for (int64_t l = 0; l < nl; ++l) {
          const T h = ih_n ? ihn[l * ih_n] : ihn[0];
          pw[0][l] = 1;
          ihr[0][l] = 1;
          ihr[1][l] = h;
          ihr[2][l] = h * h;
          ihr[3][l] = h * h * h;
          row[l] = bn[l] * (K + 1) * O;
        }
        for (int m = 1; m <= K; ++m)
#pragma omp simd
          for (int64_t l = 0; l < nl; ++l) pw[m][l] = pw[m - 1][l] * un[l];
        for (int64_t q = 0; q < O; ++q) {
          for (int i = 0; i < nterm; ++i) {
            const PlanarTerm<T>& tm = terms[i];
            const T* d = tm.d + q * tm.sq + p * tm.sp + n0;
            const T* hr = ihr[tm.r];
#pragma omp simd
            for (int64_t l = 0; l < nl; ++l) e[i][l] = d[l] * hr[l];
          }
          for (int m = 0; m <= K; ++m) {
            T* c = cm[m];
            for (int64_t l = 0; l < nl; ++l) c[l] = 0;
            for (int i = 0; i < nterm; ++i) {
              const int r = terms[i].r;
              if (r > m) continue;
              const T f = (T)falling(m, r);
              const T* x = pw[m - r];
              const T* ei = e[i];
#pragma omp simd
              for (int64_t l = 0; l < nl; ++l) c[l] += f * ei[l] * x[l];
            }
          }
          T* col = dt + q;
          for (int64_t l = 0; l < nl; ++l) {
            T* c = col + row[l];
#pragma GCC unroll 10
            for (int m = 0; m <= K; ++m) c[m * O] += cm[m][l];
          }
        }
      }
    }
  });
  tab.finish();
}

// ---------------------------------------------------------------------------------------
// Row-sparse products of wide layers' nested autograd (_spmm, _sddmm, _spmmt in kan.py): row n
// of a (N, R) sparse matrix has P blocks of K1 consecutive entries, block p starting at column
// blk[n, p] * K1, with values vals[n, c, p * K1 + m] for C channels (the rows of a channel share
// the pattern).  Output columns are contiguous, so every inner loop runs over them.

// out[n, c, :] = sum_e vals[n, c, e] table[col(n, e), :]
template <typename T>
void row_spmm_impl(const T* vals, const T* table, const int64_t* blk, int64_t N, int64_t C, int64_t P, int64_t K1,
                   int64_t O, T* out) {
  at::parallel_for(0, N, 16, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n)
      for (int64_t c = 0; c < C; ++c) {
        T* o = out + (n * C + c) * O;
        const T* v = vals + (n * C + c) * P * K1;
        for (int64_t j = 0; j < O; ++j) o[j] = 0;
        for (int64_t p = 0; p < P; ++p) {
          const T* row = table + blk[n * P + p] * K1 * O;
          for (int64_t m = 0; m < K1; ++m, row += O) {
            const T w = v[p * K1 + m];
#pragma omp simd
            for (int64_t j = 0; j < O; ++j) o[j] += w * row[j];
          }
        }
      }
  });
}

// out[n, c, e] = <y[n, c, :], table[col(n, e), :]>
template <typename T>
void row_sddmm_impl(const T* y, const T* table, const int64_t* blk, int64_t N, int64_t C, int64_t P, int64_t K1,
                    int64_t O, T* out) {
  at::parallel_for(0, N, 16, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n)
      for (int64_t p = 0; p < P; ++p) {
        const T* rows = table + blk[n * P + p] * K1 * O;
        for (int64_t c = 0; c < C; ++c) {
          const T* yc = y + (n * C + c) * O;
          T* o = out + (n * C + c) * P * K1 + p * K1;
          for (int64_t m = 0; m < K1; ++m) {
            const T* row = rows + m * O;
            T acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int64_t j = 0; j < O; ++j) acc += yc[j] * row[j];
            o[m] = acc;
          }
        }
      }
  });
}

// out[r, :] = sum over (n, c, e) with col(n, e) = r of vals[n, c, e] y[n, c, :] (summed over the
// threads with ThreadSums)
template <typename T>
void row_spmmt_impl(const T* vals, const T* y, const int64_t* blk, int64_t N, int64_t C, int64_t P, int64_t K1,
                    int64_t O, int64_t R, T* out) {
  ThreadSums<T> tab(out, R * O);
  at::parallel_for(0, N, 16, [&](int64_t begin, int64_t end) {
    T* dt = tab.mine();
    for (int64_t n = begin; n < end; ++n)
      for (int64_t p = 0; p < P; ++p) {
        T* rows = dt + blk[n * P + p] * K1 * O;
        for (int64_t c = 0; c < C; ++c) {
          const T* yc = y + (n * C + c) * O;
          const T* v = vals + (n * C + c) * P * K1 + p * K1;
          for (int64_t m = 0; m < K1; ++m) {
            T* row = rows + m * O;
            const T w = v[m];
#pragma omp simd
            for (int64_t j = 0; j < O; ++j) row[j] += w * yc[j];
          }
        }
      }
  });
  tab.finish();
}

#define KANPDE_DISPATCH_D(D_, ...)                                   \
  switch (D_) {                                                      \
    case 1: { constexpr int DD = 1; __VA_ARGS__; break; }            \
    case 2: { constexpr int DD = 2; __VA_ARGS__; break; }            \
    case 3: { constexpr int DD = 3; __VA_ARGS__; break; }            \
    case 4: { constexpr int DD = 4; __VA_ARGS__; break; }            \
    default: TORCH_CHECK(false, "jet kernel: D must be 1..4, got ", D_); \
  }

#define KANPDE_DISPATCH_K(K_, ...)                                   \
  switch (K_) {                                                      \
    case 1: { constexpr int KK = 1; __VA_ARGS__; break; }            \
    case 2: { constexpr int KK = 2; __VA_ARGS__; break; }            \
    case 3: { constexpr int KK = 3; __VA_ARGS__; break; }            \
    case 4: { constexpr int KK = 4; __VA_ARGS__; break; }            \
    case 5: { constexpr int KK = 5; __VA_ARGS__; break; }            \
    case 6: { constexpr int KK = 6; __VA_ARGS__; break; }            \
    case 7: { constexpr int KK = 7; __VA_ARGS__; break; }            \
    case 8: { constexpr int KK = 8; __VA_ARGS__; break; }            \
    default: TORCH_CHECK(false, "edge kernel: spline order must be 1..8, got ", K_); \
  }

}  // namespace

// -> [value (N, O), gradient (N, O, D), Hessian diagonal (N, O, D)] (the last two as views of
// (N, D, O) tensors)
std::vector<torch::Tensor> forward(torch::Tensor u, torch::Tensor ih, torch::Tensor bder, torch::Tensor g,
                                   torch::Tensor s, torch::Tensor blk, torch::Tensor table, int64_t k) {
  check(u, ih, bder, g, s, blk, table, k);
  const int64_t N = u.size(0), D = g.size(2), O = table.size(1);
  auto v = torch::empty({N, O}, table.options());
  auto gr = torch::empty({N, D, O}, table.options());
  auto hs = torch::empty({N, D, O}, table.options());
  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "kanpde_jet_forward", [&] {
    auto a = make_args<scalar_t>(u, ih, bder, g, s, blk, table, k);
    KANPDE_DISPATCH_D(D, (jet_forward<scalar_t, DD>(a, v.data_ptr<scalar_t>(), gr.data_ptr<scalar_t>(),
                                                    hs.data_ptr<scalar_t>())));
  });
  return {v, gr.transpose(1, 2), hs.transpose(1, 2)};
}

std::vector<torch::Tensor> backward(torch::Tensor u, torch::Tensor ih, torch::Tensor bder, torch::Tensor g,
                                    torch::Tensor s, torch::Tensor blk, torch::Tensor table, int64_t k,
                                    c10::optional<torch::Tensor> gv, c10::optional<torch::Tensor> gg,
                                    c10::optional<torch::Tensor> gh, bool need_h, bool need_g, bool need_s,
                                    bool need_t) {
  // gv (N, O), gg and gh (N, O, D): gradients of forward's outputs, any strides, or None
  check(u, ih, bder, g, s, blk, table, k);
  const int64_t N = u.size(0), I = u.size(1), D = g.size(2), O = table.size(1);
  const bool hv = gv.has_value() && gv->defined(), hg = gg.has_value() && gg->defined();
  const bool hh = gh.has_value() && gh->defined();
  TORCH_CHECK(!hv || (gv->size(0) == N && gv->size(1) == O), "jet kernel: gv must be (N, O)");
  TORCH_CHECK(!hg || (gg->size(0) == N && gg->size(1) == O && gg->size(2) == D), "jet kernel: gg must be (N, O, D)");
  TORCH_CHECK(!hh || (gh->size(0) == N && gh->size(1) == O && gh->size(2) == D), "jet kernel: gh must be (N, O, D)");
  auto opt = table.options();
  torch::Tensor dh = need_h ? torch::empty({N, I}, opt) : torch::Tensor();
  torch::Tensor dg = need_g ? torch::empty({N, I, D}, opt) : torch::Tensor();
  torch::Tensor ds = need_s ? torch::empty({N, I, D}, opt) : torch::Tensor();
  torch::Tensor dt = need_t ? torch::empty({table.size(0), O}, opt) : torch::Tensor();
  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "kanpde_jet_backward", [&] {
    auto a = make_args<scalar_t>(u, ih, bder, g, s, blk, table, k);
    Strides vs{hv ? gv->stride(0) : 0, hv ? gv->stride(1) : 0, 0};
    Strides gs{hg ? gg->stride(0) : 0, hg ? gg->stride(1) : 0, hg ? gg->stride(2) : 0};
    Strides hs{hh ? gh->stride(0) : 0, hh ? gh->stride(1) : 0, hh ? gh->stride(2) : 0};
    KANPDE_DISPATCH_D(D, (jet_backward<scalar_t, DD>(
        a, hv ? gv->data_ptr<scalar_t>() : nullptr, vs, hg ? gg->data_ptr<scalar_t>() : nullptr, gs,
        hh ? gh->data_ptr<scalar_t>() : nullptr, hs, need_h ? dh.data_ptr<scalar_t>() : nullptr,
        need_g ? dg.data_ptr<scalar_t>() : nullptr, need_s ? ds.data_ptr<scalar_t>() : nullptr,
        need_t ? dt.data_ptr<scalar_t>() : nullptr)));
  });
  return {dh, dg, ds, dt};
}

namespace {

template <typename T>
EdgeArgs<T> make_edge_args(const torch::Tensor& u, const torch::Tensor& ih, const torch::Tensor& blk,
                           const torch::Tensor& z, const torch::Tensor& aux, int64_t kind, const torch::Tensor& wb,
                           const torch::Tensor& g, const torch::Tensor& s, const torch::Tensor& table, int64_t k,
                           bool first) {
  EdgeArgs<T> a;
  a.I = u.size(0); a.N = u.size(1); a.O = table.size(1); a.k = k; a.first = first;
  a.D = first ? a.I : g.size(1);
  a.base = wb.defined() && wb.numel() > 0;
  a.u = u.data_ptr<T>(); a.ih = ih.data_ptr<T>(); a.blk = blk.data_ptr<int64_t>(); a.table = table.data_ptr<T>();
  a.ih_p = ih.stride(0); a.ih_n = ih.stride(1);
  a.kind = a.base ? (int)kind : (int)kNone;
  a.z = a.base ? z.data_ptr<T>() : nullptr;
  a.aux = a.base && (kind == kSilu || kind == kTanh) ? aux.data_ptr<T>() : nullptr;
  a.wb = a.base ? wb.data_ptr<T>() : nullptr;
  a.g = first ? nullptr : g.data_ptr<T>();
  a.s = first ? nullptr : s.data_ptr<T>();
  return a;
}

void check_edge(const torch::Tensor& u, const torch::Tensor& ih, const torch::Tensor& blk, const torch::Tensor& z,
                const torch::Tensor& aux, int64_t kind, const torch::Tensor& wb, const torch::Tensor& g,
                const torch::Tensor& s, const torch::Tensor& table, int64_t k, bool first) {
  TORCH_CHECK(k >= 1 && k <= 8, "edge kernel: spline order must be 1..8, got ", k);
  TORCH_CHECK(u.dim() == 2 && u.is_contiguous() && blk.is_contiguous() && blk.sizes() == u.sizes() &&
                  table.is_contiguous(), "edge kernel: u, blk (I, N) and table must be contiguous");
  TORCH_CHECK(ih.dim() == 2 && ih.size(0) == u.size(0) && (ih.size(1) == u.size(1) || ih.stride(1) == 0),
              "edge kernel: ih must be (I, N) or broadcast from (I, 1)");
  TORCH_CHECK(table.size(0) % (k + 1) == 0, "edge kernel: table rows are not a multiple of ", k + 1);
  const int64_t I = u.size(0), N = u.size(1);
  if (wb.defined() && wb.numel() > 0) {
    TORCH_CHECK(wb.is_contiguous() && wb.size(0) == table.size(1) && wb.size(1) == I, "edge kernel: wb must be (O, I)");
    TORCH_CHECK(kind >= kSilu && kind <= kIdentity, "edge kernel: base kind must be 1..3, got ", kind);
    TORCH_CHECK(z.is_contiguous() && z.sizes() == u.sizes(), "edge kernel: z must be contiguous (I, N)");
    TORCH_CHECK(kind == kIdentity || (aux.is_contiguous() && aux.sizes() == u.sizes()),
                "edge kernel: aux must be contiguous (I, N)");
  }
  if (!first) {  // an input layer's directions are its inputs: any number
    TORCH_CHECK(g.is_contiguous() && s.is_contiguous() && g.dim() == 3 && g.size(0) == I && g.size(2) == N &&
                    s.sizes() == g.sizes() && g.size(1) >= 1 && g.size(1) <= kMaxEdgeD,
                "edge kernel: g and s must be contiguous (I, D, N) with 1 <= D <= ", kMaxEdgeD);
  }
}

}  // namespace

// -> [value (O, N), gradient (O, D, N), Hessian diagonal (O, D, N)], planes, no bias
std::vector<torch::Tensor> edge_forward(torch::Tensor u, torch::Tensor ih, torch::Tensor blk, torch::Tensor z,
                                        torch::Tensor aux, int64_t kind, torch::Tensor wb, torch::Tensor g, torch::Tensor s, torch::Tensor table,
                                        int64_t k, bool first) {
  check_edge(u, ih, blk, z, aux, kind, wb, g, s, table, k, first);
  const int64_t I = u.size(0), N = u.size(1), O = table.size(1), D = first ? I : g.size(1);
  auto v = torch::empty({O, N}, table.options());
  auto gr = torch::empty({O, D, N}, table.options());
  auto hs = torch::empty({O, D, N}, table.options());
  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "kanpde_edge_forward", [&] {
    auto a = make_edge_args<scalar_t>(u, ih, blk, z, aux, kind, wb, g, s, table, k, first);
    KANPDE_DISPATCH_K(k, (edge_forward_impl<scalar_t, KK>(a, v.data_ptr<scalar_t>(), gr.data_ptr<scalar_t>(),
                                                          hs.data_ptr<scalar_t>())));
  });
  return {v, gr, hs};
}

// gradients gv (O, N), gg and gh (O, D, N) (contiguous, or None) -> [dh (I, N), dg (I, D, N),
// ds (I, D, N), dtable (R, O), dwb (O, I)], undefined where not needed
std::vector<torch::Tensor> edge_backward(torch::Tensor u, torch::Tensor ih, torch::Tensor blk, torch::Tensor z,
                                         torch::Tensor aux, int64_t kind, torch::Tensor wb, torch::Tensor g, torch::Tensor s, torch::Tensor table,
                                         int64_t k, bool first, c10::optional<torch::Tensor> gv,
                                         c10::optional<torch::Tensor> gg, c10::optional<torch::Tensor> gh,
                                         bool need_h, bool need_g, bool need_s, bool need_t, bool need_w) {
  check_edge(u, ih, blk, z, aux, kind, wb, g, s, table, k, first);
  const int64_t I = u.size(0), N = u.size(1), O = table.size(1), D = first ? I : g.size(1);
  const bool hv = gv.has_value() && gv->defined(), hg = gg.has_value() && gg->defined();
  const bool hh = gh.has_value() && gh->defined();
  TORCH_CHECK(!hv || (gv->is_contiguous() && gv->size(0) == O && gv->size(1) == N), "edge kernel: gv must be (O, N)");
  TORCH_CHECK(!hg || (gg->is_contiguous() && gg->size(0) == O && gg->size(1) == D && gg->size(2) == N),
              "edge kernel: gg must be contiguous (O, D, N)");
  TORCH_CHECK(!hh || (gh->is_contiguous() && gh->size(0) == O && gh->size(1) == D && gh->size(2) == N),
              "edge kernel: gh must be contiguous (O, D, N)");
  const bool base = wb.defined() && wb.numel() > 0;
  need_g = need_g && !first;
  need_s = need_s && !first;
  need_w = need_w && base;
  auto opt = table.options();
  torch::Tensor dh = need_h ? torch::empty({I, N}, opt) : torch::Tensor();
  torch::Tensor dg = need_g ? torch::empty({I, D, N}, opt) : torch::Tensor();
  torch::Tensor ds = need_s ? torch::empty({I, D, N}, opt) : torch::Tensor();
  torch::Tensor dt = need_t ? torch::empty({table.size(0), O}, opt) : torch::Tensor();
  torch::Tensor dw = need_w ? torch::empty({O, I}, opt) : torch::Tensor();
  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "kanpde_edge_backward", [&] {
    auto a = make_edge_args<scalar_t>(u, ih, blk, z, aux, kind, wb, g, s, table, k, first);
    auto ptr = [](bool want, torch::Tensor& t) { return want ? t.data_ptr<scalar_t>() : nullptr; };
    KANPDE_DISPATCH_K(k, (edge_backward_impl<scalar_t, KK>(
        a, table.size(0), hv ? gv->data_ptr<scalar_t>() : nullptr, hg ? gg->data_ptr<scalar_t>() : nullptr,
        hh ? gh->data_ptr<scalar_t>() : nullptr, ptr(need_h, dh), ptr(need_g, dg), ptr(need_s, ds), ptr(need_t, dt),
        ptr(need_w, dw))));
  });
  return {dh, dg, ds, dt, dw};
}

// ds: planes (O, I, N) (points contiguous; any strides along O and I, e.g. broadcast over I)
// for the derivative orders `orders` (each 0..3) -> the table adjoint (rows, O)
torch::Tensor planar_adjoint(torch::Tensor u, torch::Tensor ih, torch::Tensor blk, std::vector<torch::Tensor> ds,
                             std::vector<int64_t> orders, int64_t rows, int64_t k) {
  TORCH_CHECK(k >= 1 && k <= 8, "planar adjoint: spline order must be 1..8, got ", k);
  TORCH_CHECK(u.dim() == 2 && u.is_contiguous() && blk.is_contiguous() && blk.sizes() == u.sizes(),
              "planar adjoint: u and blk must be contiguous (I, N)");
  TORCH_CHECK(ih.dim() == 2 && ih.size(0) == u.size(0) && (ih.size(1) == u.size(1) || ih.stride(1) == 0),
              "planar adjoint: ih must be (I, N) or broadcast from (I, 1)");
  TORCH_CHECK(!ds.empty() && ds.size() == orders.size() && ds.size() <= 4, "planar adjoint: 1..4 terms");
  TORCH_CHECK(rows % (k + 1) == 0, "planar adjoint: rows must be a multiple of ", k + 1);
  const int64_t I = u.size(0), N = u.size(1), O = ds[0].size(0);
  for (size_t i = 0; i < ds.size(); ++i) {
    TORCH_CHECK(ds[i].dim() == 3 && ds[i].size(0) == O && ds[i].size(1) == I && ds[i].size(2) == N &&
                    ds[i].stride(2) == 1 && ds[i].scalar_type() == u.scalar_type(),
                "planar adjoint: every term must be (O, I, N) with the points contiguous");
    TORCH_CHECK(orders[i] >= 0 && orders[i] <= 3 && orders[i] <= k, "planar adjoint: orders must be 0..min(3, k)");
  }
  auto out = torch::empty({rows, O}, u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "kanpde_planar_adjoint", [&] {
    std::vector<PlanarTerm<scalar_t>> terms;
    for (size_t i = 0; i < ds.size(); ++i)
      terms.push_back({ds[i].data_ptr<scalar_t>(), ds[i].stride(0), ds[i].stride(1), (int)orders[i]});
    KANPDE_DISPATCH_K(k, (planar_adjoint_impl<scalar_t, KK>(u.data_ptr<scalar_t>(), ih.data_ptr<scalar_t>(),
                                                            ih.stride(0), ih.stride(1), blk.data_ptr<int64_t>(),
                                                            terms, I, N, O, rows, out.data_ptr<scalar_t>())));
  });
  return out;
}

namespace {

void check_rows(const torch::Tensor& blk, const torch::Tensor& a, const torch::Tensor& b, int64_t k1,
                const char* what) {
  TORCH_CHECK(blk.dim() == 2 && blk.is_contiguous() && blk.scalar_type() == torch::kLong, what,
              ": blk must be a contiguous (N, P) int64 tensor");
  TORCH_CHECK(a.dim() == 3 && a.is_contiguous() && a.size(0) == blk.size(0), what,
              ": the first operand must be contiguous (N, C, .)");
  TORCH_CHECK(b.is_contiguous() && b.scalar_type() == a.scalar_type(), what, ": operands must be contiguous, same dtype");
  TORCH_CHECK(k1 >= 1, what, ": rows per block must be positive");
}

}  // namespace

// vals (N, C, P * K1), table (R, O) -> (N, C, O)
torch::Tensor row_spmm(torch::Tensor vals, torch::Tensor table, torch::Tensor blk, int64_t k1) {
  check_rows(blk, vals, table, k1, "row_spmm");
  const int64_t N = vals.size(0), C = vals.size(1), P = blk.size(1), O = table.size(1);
  TORCH_CHECK(vals.size(2) == P * k1 && table.dim() == 2, "row_spmm: vals must be (N, C, P * K1), table (R, O)");
  auto out = torch::empty({N, C, O}, table.options());
  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "kanpde_row_spmm", [&] {
    row_spmm_impl<scalar_t>(vals.data_ptr<scalar_t>(), table.data_ptr<scalar_t>(), blk.data_ptr<int64_t>(), N, C, P,
                            k1, O, out.data_ptr<scalar_t>());
  });
  return out;
}

// y (N, C, O), table (R, O) -> (N, C, P * K1)
torch::Tensor row_sddmm(torch::Tensor y, torch::Tensor table, torch::Tensor blk, int64_t k1) {
  check_rows(blk, y, table, k1, "row_sddmm");
  const int64_t N = y.size(0), C = y.size(1), P = blk.size(1), O = table.size(1);
  TORCH_CHECK(y.size(2) == O && table.dim() == 2, "row_sddmm: y must be (N, C, O), table (R, O)");
  auto out = torch::empty({N, C, P * k1}, table.options());
  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "kanpde_row_sddmm", [&] {
    row_sddmm_impl<scalar_t>(y.data_ptr<scalar_t>(), table.data_ptr<scalar_t>(), blk.data_ptr<int64_t>(), N, C, P,
                             k1, O, out.data_ptr<scalar_t>());
  });
  return out;
}

// vals (N, C, P * K1), y (N, C, O) -> (rows, O)
torch::Tensor row_spmmt(torch::Tensor vals, torch::Tensor y, torch::Tensor blk, int64_t k1, int64_t rows) {
  check_rows(blk, vals, y, k1, "row_spmmt");
  const int64_t N = vals.size(0), C = vals.size(1), P = blk.size(1), O = y.size(2);
  TORCH_CHECK(vals.size(2) == P * k1 && y.dim() == 3 && y.size(0) == N && y.size(1) == C,
              "row_spmmt: vals must be (N, C, P * K1), y (N, C, O)");
  auto out = torch::empty({rows, O}, y.options());
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "kanpde_row_spmmt", [&] {
    row_spmmt_impl<scalar_t>(vals.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), blk.data_ptr<int64_t>(), N, C, P, k1,
                             O, rows, out.data_ptr<scalar_t>());
  });
  return out;
}
