// kanpde: compiled CPU kernels for the second-order jet of a KAN layer (row-product form),
// built on first use by kanpde/models/_native.py; the pure-torch equivalent is _RowJet in
// kanpde/models/kan.py, and tests/test_native.py checks the two against each other.
//
// Layer input h (N, I) with gradient and Hessian-diagonal channels g, s (N, I, D) (any
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

// m! / (m - r)! for r = 0..3
static const double kFall[4][kMaxK1] = {
    {1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9},
    {0, 0, 2, 6, 12, 20, 30, 42, 56, 72},
    {0, 0, 0, 6, 24, 60, 120, 210, 336, 504}};

template <typename T>
struct Args {
  const T *u, *ih, *bder, *g, *s, *table;
  const int64_t* blk;
  Strides gs, ss;
  int64_t N, I, K1, O, R, k, bstride;  // R table rows; bstride = N * I (between bder's orders)
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
  const T* ihn = a.ih + n * I;
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
      const T f = (T)kFall[r][m];
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
  const int64_t total = a.R * O;
  const int nt = at::get_num_threads();
  // one partial table per thread, summed in a fixed order; with one thread, dtab itself
  const bool direct = nt == 1;
  std::vector<T> part(dtab && !direct ? (size_t)nt * total : 0, T(0));
  if (dtab && direct) std::fill(dtab, dtab + total, T(0));
  const bool need_x = dh || dg || ds;
  // the table transposed, (O, R + B) with zero padding, for the dot products of the x adjoints
  const int64_t rpad = a.R + B;
  std::vector<T> tt(need_x && K1 <= B ? (size_t)O * rpad : 0, T(0));
  if (!tt.empty())
    for (int64_t r = 0; r < a.R; ++r)
      for (int64_t q = 0; q < O; ++q) tt[q * rpad + r] = a.table[r * O + q];
  at::parallel_for(0, a.N, 16, [&](int64_t begin, int64_t end) {
    T* dt = !dtab ? nullptr : direct ? dtab : part.data() + (size_t)at::get_thread_num() * total;
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
  if (dtab && !direct) {
    at::parallel_for(0, total, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        T acc = 0;
        for (int t = 0; t < nt; ++t) acc += part[(size_t)t * total + i];
        dtab[i] = acc;
      }
    });
  }
}

template <typename T>
Args<T> make_args(const torch::Tensor& u, const torch::Tensor& ih, const torch::Tensor& bder,
                  const torch::Tensor& g, const torch::Tensor& s, const torch::Tensor& blk,
                  const torch::Tensor& table, int64_t k) {
  Args<T> a;
  a.N = u.size(0); a.I = u.size(1); a.O = table.size(1); a.R = table.size(0); a.k = k;
  a.base = bder.defined() && bder.numel() > 0;
  a.K1 = k + 1 + (a.base ? 1 : 0);
  a.bstride = a.N * a.I;
  a.u = u.data_ptr<T>(); a.ih = ih.data_ptr<T>(); a.bder = a.base ? bder.data_ptr<T>() : nullptr;
  a.g = g.data_ptr<T>(); a.s = s.data_ptr<T>(); a.table = table.data_ptr<T>(); a.blk = blk.data_ptr<int64_t>();
  a.gs = {g.stride(0), g.stride(1), g.stride(2)};
  a.ss = {s.stride(0), s.stride(1), s.stride(2)};
  return a;
}

void check(const torch::Tensor& u, const torch::Tensor& ih, const torch::Tensor& bder, const torch::Tensor& g,
           const torch::Tensor& s, const torch::Tensor& blk, const torch::Tensor& table, int64_t k) {
  TORCH_CHECK(k >= 1 && k + 2 <= kMaxK1, "jet kernel: spline order must be 1..", kMaxK1 - 2, ", got ", k);
  TORCH_CHECK(u.is_contiguous() && ih.is_contiguous() && blk.is_contiguous() && table.is_contiguous(),
              "jet kernel: u, ih, blk and table must be contiguous");
  TORCH_CHECK(!bder.defined() || bder.numel() == 0 || (bder.is_contiguous() && bder.size(0) >= 4),
              "jet kernel: bder must be a contiguous (4, N, I) tensor");
  TORCH_CHECK(ih.sizes() == u.sizes() && blk.sizes() == u.sizes(), "jet kernel: u, ih and blk shapes differ");
  TORCH_CHECK(g.size(0) == u.size(0) && g.size(1) == u.size(1) && s.sizes() == g.sizes(),
              "jet kernel: g and s must be (N, I, D)");
  const int64_t K1 = k + 1 + ((bder.defined() && bder.numel() > 0) ? 1 : 0);
  TORCH_CHECK(table.size(0) % K1 == 0, "jet kernel: table rows are not a multiple of ", K1);
}

#define KANPDE_DISPATCH_D(D_, ...)                                   \
  switch (D_) {                                                      \
    case 1: { constexpr int DD = 1; __VA_ARGS__; break; }            \
    case 2: { constexpr int DD = 2; __VA_ARGS__; break; }            \
    case 3: { constexpr int DD = 3; __VA_ARGS__; break; }            \
    case 4: { constexpr int DD = 4; __VA_ARGS__; break; }            \
    default: TORCH_CHECK(false, "jet kernel: D must be 1..4, got ", D_); \
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
