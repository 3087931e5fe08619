#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <vector>

// kanpde: compiled CPU kernels for the second-order jet of a KAN layer (row-product form),
// built on first use by kanpde/models/_native.py; the pure-torch equivalent is _RowJet in
// kanpde/models/kan.py, and tests/test_native.py checks the two against each other.
//
// Second-order jet of a KAN layer as one fused pass per point (no per-channel temporaries).
// Q0..Q2 (N, I, K1): h-derivatives of the K1 local basis values of input p of point n;
// g, s (N, I, D): gradient and Hessian-diagonal channels of the layer input;
// blk (N, I): block of (n, p), whose rows are blk * K1 + m of table (R, O).
// out (N, 1 + 2D, O): value, D gradient and D Hessian-diagonal channels.

template <typename T, int D>
static void jet_forward(const T* Q0, const T* Q1, const T* Q2, const T* g, const T* s,
                        const int64_t* blk, const T* table, T* out,
                        int64_t N, int64_t I, int64_t K1, int64_t O) {
  constexpr int C = 1 + 2 * D;
  at::parallel_for(0, N, 16, [&](int64_t begin, int64_t end) {
    std::vector<T> acc(C * O);
    for (int64_t n = begin; n < end; ++n) {
      std::fill(acc.begin(), acc.end(), T(0));
      T* a = acc.data();
      for (int64_t p = 0; p < I; ++p) {
        const int64_t np = n * I + p;
        T gd[D], g2[D], sd[D];
        for (int d = 0; d < D; ++d) { gd[d] = g[np * D + d]; g2[d] = gd[d] * gd[d]; sd[d] = s[np * D + d]; }
        const T* row = table + blk[np] * K1 * O;
        for (int64_t m = 0; m < K1; ++m, row += O) {
          const T q0 = Q0[np * K1 + m], q1 = Q1[np * K1 + m], q2 = Q2[np * K1 + m];
          T c[C];
          c[0] = q0;
          for (int d = 0; d < D; ++d) { c[1 + d] = q1 * gd[d]; c[1 + D + d] = q2 * g2[d] + q1 * sd[d]; }
          for (int ci = 0; ci < C; ++ci) {
            const T w = c[ci];
            T* ac = a + ci * O;
#pragma omp simd
            for (int64_t q = 0; q < O; ++q) ac[q] += w * row[q];
          }
        }
      }
      std::copy(acc.begin(), acc.end(), out + n * C * O);
    }
  });
}

template <typename T, int D>
static void jet_backward(const T* Q0, const T* Q1, const T* Q2, const T* Q3, const T* g, const T* s,
                         const int64_t* blk, const T* table, const T* gout,
                         T* dh, T* dg, T* ds, T* dtab, int64_t R,
                         int64_t N, int64_t I, int64_t K1, int64_t O) {
  constexpr int C = 1 + 2 * D;
  const int nt = at::get_num_threads();
  std::vector<T> part(dtab ? (size_t)nt * R * O : 0, T(0));
  at::parallel_for(0, N, 16, [&](int64_t begin, int64_t end) {
    T* dt = dtab ? part.data() + (size_t)at::get_thread_num() * R * O : nullptr;
    for (int64_t n = begin; n < end; ++n) {
      const T* go = gout + n * C * O;
      for (int64_t p = 0; p < I; ++p) {
        const int64_t np = n * I + p;
        T gd[D], g2[D], sd[D];
        for (int d = 0; d < D; ++d) { gd[d] = g[np * D + d]; g2[d] = gd[d] * gd[d]; sd[d] = s[np * D + d]; }
        T a_h = 0, a_g[D], a_s[D];
        for (int d = 0; d < D; ++d) { a_g[d] = 0; a_s[d] = 0; }
        const int64_t r0 = blk[np] * K1;
        for (int64_t m = 0; m < K1; ++m) {
          const T* row = table + (r0 + m) * O;
          T w[C];
          for (int ci = 0; ci < C; ++ci) {
            const T* gc = go + ci * O;
            T acc = 0;
#pragma omp simd reduction(+:acc)
            for (int64_t q = 0; q < O; ++q) acc += gc[q] * row[q];
            w[ci] = acc;
          }
          const T q0 = Q0[np * K1 + m], q1 = Q1[np * K1 + m], q2 = Q2[np * K1 + m];
          const T q3 = Q3 ? Q3[np * K1 + m] : T(0);
          a_h += q1 * w[0];
          for (int d = 0; d < D; ++d) {
            const T wg = w[1 + d], ws = w[1 + D + d];
            a_h += q2 * gd[d] * wg + (q3 * g2[d] + q2 * sd[d]) * ws;
            a_g[d] += q1 * wg + 2 * q2 * gd[d] * ws;
            a_s[d] += q1 * ws;
          }
          if (dt) {
            T c[C];
            c[0] = q0;
            for (int d = 0; d < D; ++d) { c[1 + d] = q1 * gd[d]; c[1 + D + d] = q2 * g2[d] + q1 * sd[d]; }
            T* drow = dt + (r0 + m) * O;
            for (int ci = 0; ci < C; ++ci) {
              const T cc = c[ci];
              const T* gc = go + ci * O;
#pragma omp simd
              for (int64_t q = 0; q < O; ++q) drow[q] += cc * gc[q];
            }
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
  if (dtab) {
    const int64_t total = R * O;
    at::parallel_for(0, total, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        T acc = 0;
        for (int t = 0; t < nt; ++t) acc += part[(size_t)t * total + i];
        dtab[i] = acc;
      }
    });
  }
}

#define KANPDE_DISPATCH_D(D_, ...)                                   \
  switch (D_) {                                                      \
    case 1: { constexpr int DD = 1; __VA_ARGS__; break; }            \
    case 2: { constexpr int DD = 2; __VA_ARGS__; break; }            \
    case 3: { constexpr int DD = 3; __VA_ARGS__; break; }            \
    case 4: { constexpr int DD = 4; __VA_ARGS__; break; }            \
    default: TORCH_CHECK(false, "jet kernel: D must be 1..4, got ", D_); \
  }

torch::Tensor forward(torch::Tensor Q0, torch::Tensor Q1, torch::Tensor Q2, torch::Tensor g,
                      torch::Tensor s, torch::Tensor blk, torch::Tensor table) {
  const int64_t N = Q0.size(0), I = Q0.size(1), K1 = Q0.size(2), D = g.size(2), O = table.size(1);
  auto out = torch::empty({N, 1 + 2 * D, O}, table.options());
  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "kanpde_jet_forward", [&] {
    KANPDE_DISPATCH_D(D, (jet_forward<scalar_t, DD>(
        Q0.data_ptr<scalar_t>(), Q1.data_ptr<scalar_t>(), Q2.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(),
        s.data_ptr<scalar_t>(), blk.data_ptr<int64_t>(), table.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
        N, I, K1, O)));
  });
  return out;
}

std::vector<torch::Tensor> backward(torch::Tensor Q0, torch::Tensor Q1, torch::Tensor Q2, torch::Tensor Q3,
                                    torch::Tensor g, torch::Tensor s, torch::Tensor blk, torch::Tensor table,
                                    torch::Tensor gout, bool need_h, bool need_g, bool need_s, bool need_t) {
  const int64_t N = Q0.size(0), I = Q0.size(1), K1 = Q0.size(2), D = g.size(2), O = table.size(1);
  const int64_t R = table.size(0);
  auto opt = table.options();
  torch::Tensor dh = need_h ? torch::empty({N, I}, opt) : torch::Tensor();
  torch::Tensor dg = need_g ? torch::empty({N, I, D}, opt) : torch::Tensor();
  torch::Tensor ds = need_s ? torch::empty({N, I, D}, opt) : torch::Tensor();
  torch::Tensor dt = need_t ? torch::empty({R, O}, opt) : torch::Tensor();
  AT_DISPATCH_FLOATING_TYPES(table.scalar_type(), "kanpde_jet_backward", [&] {
    KANPDE_DISPATCH_D(D, (jet_backward<scalar_t, DD>(
        Q0.data_ptr<scalar_t>(), Q1.data_ptr<scalar_t>(), Q2.data_ptr<scalar_t>(),
        need_h ? Q3.data_ptr<scalar_t>() : nullptr, g.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(),
        blk.data_ptr<int64_t>(), table.data_ptr<scalar_t>(), gout.data_ptr<scalar_t>(),
        need_h ? dh.data_ptr<scalar_t>() : nullptr, need_g ? dg.data_ptr<scalar_t>() : nullptr,
        need_s ? ds.data_ptr<scalar_t>() : nullptr, need_t ? dt.data_ptr<scalar_t>() : nullptr, R,
        N, I, K1, O)));
  });
  return {dh, dg, ds, dt};
}
