// kanpde: compiled edge sums for nested autograd through KAN layers, appended to kan_jet.cpp
// (one module; it uses kFall, ThreadSums, Block and BaseKind from there).
//   sums_forward / sums_backward / sums_adjoint   the _SumsF / _SumsB / _SumsT nodes of kan.py
//
// Planes with the points innermost.  Input p of point n: block blk[p, n], coordinate u[p, n],
// du/dh ih[p, n] (stride 0 along n on a uniform grid), value h[p, n] with aux[p, n] = sigma(h)
// (silu) or tanh(h) (tanh) for the base activation b.  The r-th h-derivative of edge p -> q is
//   phi_r[q, p, n] = sum_{m >= r} m!/(m - r)! table[blk * (k + 1) + m, q] u^(m - r) ih^r + wb[q, p] b^(r)(h)
// and the three kernels are the partial derivatives of S_r(y, z) = sum y[q, n] z[p, n] phi_r[q, p, n]:
//   sums_forward:  out[q, n] = sum_p z[p, n] phi_r[q, p, n]        (z absent: ones)
//   sums_backward: out[p, n] = sum_q y[q, n] phi_r[q, p, n]
//   sums_adjoint:  dtable[blk * (k + 1) + m, q] = sum_n y[q, n] z[p, n] m!/(m - r)! u^(m - r) ih^r,
//                  dwb[q, p] = sum_n y[q, n] z[p, n] b^(r)(h)
// No (O, I, N) planes are formed: each point's weights (spline powers and base derivative, times
// z) are made once per input, a tile of points at a time, and used at once.  Wide layers (O at
// least two vectors) run vectorised over q, along the table rows; narrow ones over a tile of
// points as the SIMD lanes (the "rows" and "lanes" kernels below).  Points are split over
// torch's intra-op threads; the adjoint sums per thread, then in a fixed order (ThreadSums), so
// results repeat for a thread count.  Needs GCC or Clang (vector types).

#include <cstring>

namespace {

template <typename T>
struct SumsArgs {
  const T *u, *ih, *h, *aux, *table, *wbt;  // wbt: wb transposed, (I, O)
  const int64_t* blk;
  int64_t N, I, O, k, r, ih_p, ih_n;
  int kind;
  bool spline, base;
  int64_t nm;  // spline terms per input, k + 1 - r
};

// b^(r)(x), r <= 3, from x and v = sigma(x) (silu) or tanh(x) (tanh); the closed forms of edge_lanes
template <typename T, int KIND, int R>
inline T base_derivative(T x, T v) {
  if (KIND == kSilu) {
    const T d = v - v * v, w = 1 - 2 * v, zw = x * w;
    return R == 0 ? x * v : R == 1 ? v + x * d : R == 2 ? d * (2 + zw) : d * (w * (3 + zw) - 2 * x * d);
  }
  if (KIND == kTanh) {
    const T d = 1 - v * v;
    return R == 0 ? v : R == 1 ? d : R == 2 ? -2 * v * d : -2 * d * (d - 2 * v * v);
  }
  return R == 0 ? x : R == 1 ? T(1) : T(0);  // identity
}

// cb[l] = z[l] b^(r)(x[l]) over nl lanes
template <typename T, int KIND, int R>
inline void base_lanes(const T* x, const T* v, const T* z, int64_t nl, T* cb) {
#pragma omp simd
  for (int64_t l = 0; l < nl; ++l) cb[l] = z[l] * base_derivative<T, KIND, R>(x[l], KIND == kIdentity ? T(0) : v[l]);
}

template <typename T, int KIND>
inline void base_lanes_r(int r, const T* x, const T* v, const T* z, int64_t nl, T* cb) {
  switch (r) {
    case 0: base_lanes<T, KIND, 0>(x, v, z, nl, cb); break;
    case 1: base_lanes<T, KIND, 1>(x, v, z, nl, cb); break;
    case 2: base_lanes<T, KIND, 2>(x, v, z, nl, cb); break;
    default: base_lanes<T, KIND, 3>(x, v, z, nl, cb); break;
  }
}

// One tile of L points at input p: the first table row used (m = r), the spline weights c[i]
// (m = r + i) and the base weight cb, each times z.
template <typename T, int L>
struct SumsLanes {
  int64_t row[L];
  T c[kMaxK1][L];
  T cb[L];
};

// Full: nl == L, so every loop has a compile-time trip count (no remainder loops, which cost
// more than the arithmetic at these lengths)
template <typename T, int L, bool Full>
inline void sums_lanes_n(const SumsArgs<T>& a, int64_t p, int64_t n0, int64_t nl_, const T* z, int64_t zs_p,
                         int64_t zs_n, SumsLanes<T, L>& s) {
  const int64_t nl = Full ? L : nl_;
  const int r = (int)a.r;
  const int64_t e0 = p * a.N + n0;
  T zl[L];
  if (!z) {
    for (int64_t l = 0; l < nl; ++l) zl[l] = 1;
  } else if (zs_n == 1) {
    const T* zp = z + p * zs_p + n0;
#pragma omp simd
    for (int64_t l = 0; l < nl; ++l) zl[l] = zp[l];
  } else {
    const T* zp = z + p * zs_p + n0 * zs_n;
    for (int64_t l = 0; l < nl; ++l) zl[l] = zp[l * zs_n];
  }
  if (a.spline) {
    const int64_t* bn = a.blk + e0;
    const T* un = a.u + e0;
    const T* ihn = a.ih + p * a.ih_p + n0 * a.ih_n;
    const int64_t K1O = (a.k + 1) * a.O, r0 = r * a.O;
    T pw[L];
#pragma omp simd
    for (int64_t l = 0; l < nl; ++l) s.row[l] = bn[l] * K1O + r0;
    if (a.ih_n == 0) {  // uniform grid: one du/dh per input
      T hr = 1;
      for (int i = 0; i < r; ++i) hr *= ihn[0];
#pragma omp simd
      for (int64_t l = 0; l < nl; ++l) pw[l] = zl[l] * hr;
    } else {
      for (int64_t l = 0; l < nl; ++l) {
        T v = zl[l];
        for (int i = 0; i < r; ++i) v *= ihn[l * a.ih_n];
        pw[l] = v;
      }
    }
    for (int64_t i = 0; i < a.nm; ++i) {
      const T f = (T)kFall.v[r][r + i];
      T* ci = s.c[i];
#pragma omp simd
      for (int64_t l = 0; l < nl; ++l) {
        ci[l] = f * pw[l];
        pw[l] *= un[l];
      }
    }
  }
  if (a.base) {
    const T* x = a.h + e0;
    const T* v = a.aux ? a.aux + e0 : nullptr;
    if (a.kind == kSilu) base_lanes_r<T, kSilu>(r, x, v, zl, nl, s.cb);
    else if (a.kind == kTanh) base_lanes_r<T, kTanh>(r, x, v, zl, nl, s.cb);
    else base_lanes_r<T, kIdentity>(r, x, v, zl, nl, s.cb);
  }
}

template <typename T, int L>
inline void sums_lanes(const SumsArgs<T>& a, int64_t p, int64_t n0, int64_t nl, const T* z, int64_t zs_p,
                       int64_t zs_n, SumsLanes<T, L>& s) {
  if (nl == L)
    sums_lanes_n<T, L, true>(a, p, n0, nl, z, zs_p, zs_n, s);
  else
    sums_lanes_n<T, L, false>(a, p, n0, nl, z, zs_p, zs_n, s);
}

// ---- wide layers: vectorised over the output columns q (table rows are contiguous in q).  A
// block of points is done input by input, so the table rows of one input (G (k + 1) rows) stay
// in cache while the block's points go through them, also on fine grids whose whole table does
// not fit; the points' weights are formed kRowTile points at a time, lanes over the points.

constexpr int kRowTile = 16;
template <typename T>
using RowLanes = SumsLanes<T, kRowTile>;

// Points per block: their O-wide accumulators (or y) fill about 256 KiB, a share of L2.
template <typename T>
inline int64_t row_block_points(int64_t O) {
  const int64_t n = (256 * 1024 / (int64_t)sizeof(T)) / std::max<int64_t>(O, 1);
  return std::max<int64_t>(kRowTile, std::min<int64_t>(1024, n / kRowTile * kRowTile));
}

// y[q, n0 + l] (strides ys_q, ys_n) -> yb[q * dq + l * dl] for q < O, l < nb: a block's y point
// by point (dq = 1, dl = O) or as contiguous lanes (dq = the tile, dl = 1)
template <typename T>
inline void load_block(const T* y, int64_t ys_q, int64_t ys_n, int64_t n0, int64_t nb, int64_t O, T* yb, int64_t dq,
                       int64_t dl) {
  for (int64_t q = 0; q < O; ++q) {
    const T* yq = y + q * ys_q + n0 * ys_n;
    for (int64_t l = 0; l < nb; ++l) yb[q * dq + l * dl] = yq[l * ys_n];
  }
}

// Calls block(n0, nb) for the blocks of B points of 0 .. N, split over torch's threads.
template <typename Fn>
inline void point_blocks(int64_t N, int64_t B, Fn block) {
  at::parallel_for(0, (N + B - 1) / B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) block(b * B, std::min(B, N - b * B));
  });
}

// Calls body(p, l0, nl) for every input p and tile of kRowTile points of the block n0 .. n0 + nb
// (l0: the tile's first point within the block), with the tile's weights for input p in s.
template <typename T, typename Body>
inline void row_block_inputs(const SumsArgs<T>& a, int64_t n0, int64_t nb, const T* z, int64_t zs_p, int64_t zs_n,
                             RowLanes<T>& s, Body body) {
  for (int64_t p = 0; p < a.I; ++p)
    for (int64_t l0 = 0; l0 < nb; l0 += kRowTile) {
      const int64_t nl = std::min<int64_t>(kRowTile, nb - l0);
      sums_lanes<T, kRowTile>(a, p, n0 + l0, nl, z, zs_p, zs_n, s);
      body(p, l0, nl);
    }
}

// One vector of columns (64 bytes) as a GCC/Clang vector type, so that an accumulator stays in
// a register through a loop of runtime length (plain arrays were spilled after every add).
template <typename T>
struct VecOf { typedef T type __attribute__((vector_size(64))); };
template <typename T>
using Vec = typename VecOf<T>::type;
template <typename T>
inline Vec<T> vload(const T* p) { Vec<T> v; std::memcpy(&v, p, sizeof(v)); return v; }
template <typename T>
inline void vstore(T* p, const Vec<T>& v) { std::memcpy(p, &v, sizeof(v)); }

// acc[j] += sum_i c[i] rows[i O + j] over j < O
template <typename T>
inline void add_rows(const T* rows, const T* c, int64_t nc, int64_t O, T* acc) {
  constexpr int B = Block<T>::B;
  int64_t j0 = 0;
  for (; j0 + B <= O; j0 += B) {
    Vec<T> v = vload(acc + j0);
    for (int64_t i = 0; i < nc; ++i) v += c[i] * vload(rows + i * O + j0);
    vstore(acc + j0, v);
  }
  for (int64_t i = 0; i < nc && j0 < O; ++i)
    for (int64_t j = j0; j < O; ++j) acc[j] += c[i] * rows[i * O + j];
}

// sum_j (sum_i c[i] rows[i O + j]) y[j] over j < O
template <typename T>
inline T dot_rows(const T* rows, const T* c, int64_t nc, int64_t O, const T* y) {
  constexpr int B = Block<T>::B;
  Vec<T> acc = {};
  int64_t j0 = 0;
  for (; j0 + B <= O; j0 += B) {
    Vec<T> v = c[0] * vload(rows + j0);
    for (int64_t i = 1; i < nc; ++i) v += c[i] * vload(rows + i * O + j0);
    acc += v * vload(y + j0);
  }
  T out = 0;
  for (int j = 0; j < B; ++j) out += acc[j];
  for (int64_t j = j0; j < O; ++j) {
    T v = 0;
    for (int64_t i = 0; i < nc; ++i) v += c[i] * rows[i * O + j];
    out += v * y[j];
  }
  return out;
}

// y[j] += c x[j] over j < n
template <typename T>
inline void axpy(T c, const T* x, T* y, int64_t n) {
  constexpr int B = Block<T>::B;
  int64_t j0 = 0;
  for (; j0 + B <= n; j0 += B) vstore(y + j0, vload(y + j0) + c * vload(x + j0));
  for (int64_t j = j0; j < n; ++j) y[j] += c * x[j];
}

template <typename T>
void sums_forward_rows(const SumsArgs<T>& a, const T* z, int64_t zs_p, int64_t zs_n, T* out) {
  const int64_t O = a.O;
  point_blocks(a.N, row_block_points<T>(O), [&](int64_t n0, int64_t nb) {
    RowLanes<T> s;
    std::vector<T> acc(nb * O, T(0));
    T c[kMaxK1];
    row_block_inputs<T>(a, n0, nb, z, zs_p, zs_n, s, [&](int64_t p, int64_t l0, int64_t nl) {
      for (int64_t l = 0; l < nl; ++l) {
        T* al = acc.data() + (l0 + l) * O;
        if (a.spline) {
          for (int64_t i = 0; i < a.nm; ++i) c[i] = s.c[i][l];
          add_rows<T>(a.table + s.row[l], c, a.nm, O, al);
        }
        if (a.base) add_rows<T>(a.wbt + p * O, &s.cb[l], 1, O, al);
      }
    });
    for (int64_t q = 0; q < O; ++q)
      for (int64_t l = 0; l < nb; ++l) out[q * a.N + n0 + l] = acc[l * O + q];
  });
}

template <typename T>
void sums_backward_rows(const SumsArgs<T>& a, const T* y, int64_t ys_q, int64_t ys_n, T* out) {
  const int64_t O = a.O;
  point_blocks(a.N, row_block_points<T>(O), [&](int64_t n0, int64_t nb) {
    RowLanes<T> s;
    std::vector<T> yb(nb * O);
    T c[kMaxK1];
    load_block<T>(y, ys_q, ys_n, n0, nb, O, yb.data(), 1, O);
    row_block_inputs<T>(a, n0, nb, nullptr, 0, 0, s, [&](int64_t p, int64_t l0, int64_t nl) {
      for (int64_t l = 0; l < nl; ++l) {
        // sum_q y[q] phi_r of edge p -> q at the point
        const T* yl = yb.data() + (l0 + l) * O;
        T acc = 0;
        if (a.spline) {
          for (int64_t i = 0; i < a.nm; ++i) c[i] = s.c[i][l];
          acc = dot_rows<T>(a.table + s.row[l], c, a.nm, O, yl);
        }
        if (a.base) acc += dot_rows<T>(a.wbt + p * O, &s.cb[l], 1, O, yl);
        out[p * a.N + n0 + l0 + l] = acc;
      }
    });
  });
}

template <typename T>
void sums_adjoint_rows(const SumsArgs<T>& a, const T* y, int64_t ys_q, int64_t ys_n, const T* z, int64_t zs_p,
                       int64_t zs_n, int64_t R, T* dtab, T* dwbt) {
  const int64_t O = a.O;
  ThreadSums<T> tab(a.spline ? dtab : nullptr, R * O), wsum(a.base ? dwbt : nullptr, a.I * O);
  point_blocks(a.N, row_block_points<T>(O), [&](int64_t n0, int64_t nb) {
    T* dt = tab.mine();
    T* dw = wsum.mine();
    RowLanes<T> s;
    std::vector<T> yb(nb * O);
    load_block<T>(y, ys_q, ys_n, n0, nb, O, yb.data(), 1, O);
    row_block_inputs<T>(a, n0, nb, z, zs_p, zs_n, s, [&](int64_t p, int64_t l0, int64_t nl) {
      for (int64_t l = 0; l < nl; ++l) {
        const T* yl = yb.data() + (l0 + l) * O;
        if (dt) {
          T* drow = dt + s.row[l];
          for (int64_t i = 0; i < a.nm; ++i, drow += O) axpy<T>(s.c[i][l], yl, drow, O);
        }
        if (dw) axpy<T>(s.cb[l], yl, dw + p * O, O);
      }
    });
  });
  tab.finish();
  wsum.finish();
}

// ---- narrow layers: a tile of kTile points as the SIMD lanes (few output columns to vectorise
// over), each edge's table entries gathered per lane

template <typename T>
using EdgeTile = SumsLanes<T, kTile>;

// phi[l] = sum_i c[i][l] table[row[l] + i O + q] + w cb[l]: edge p -> q on the tile
template <typename T>
inline void sums_edge(const SumsArgs<T>& a, const EdgeTile<T>& s, int64_t q, T w, int64_t nl, T* phi) {
  if (a.base) {
#pragma omp simd
    for (int64_t l = 0; l < nl; ++l) phi[l] = w * s.cb[l];
  } else {
    for (int64_t l = 0; l < nl; ++l) phi[l] = 0;
  }
  // lane by lane: a point's entries are nm numbers a stride O apart (vector gathers of them,
  // one entry per lane, measured slower)
  const T* col = a.table + q;
  for (int64_t l = 0; l < nl; ++l) {
    const T* t = col + s.row[l];
    T acc = phi[l];
    for (int64_t i = 0; i < a.nm; ++i) acc += s.c[i][l] * t[i * a.O];
    phi[l] = acc;
  }
}

template <typename T>
void sums_forward_lanes(const SumsArgs<T>& a, const T* z, int64_t zs_p, int64_t zs_n, T* out) {
  const int64_t N = a.N, O = a.O;
  point_blocks(N, kTile, [&](int64_t n0, int64_t nl) {
    EdgeTile<T> s;
    T phi[kTile];
    for (int64_t q = 0; q < O; ++q)
      for (int64_t l = 0; l < nl; ++l) out[q * N + n0 + l] = 0;
    for (int64_t p = 0; p < a.I; ++p) {
      sums_lanes<T, kTile>(a, p, n0, nl, z, zs_p, zs_n, s);
      for (int64_t q = 0; q < O; ++q) {
        sums_edge<T>(a, s, q, a.base ? a.wbt[p * O + q] : T(0), nl, phi);
        T* o = out + q * N + n0;
#pragma omp simd
        for (int64_t l = 0; l < nl; ++l) o[l] += phi[l];
      }
    }
  });
}

template <typename T>
void sums_backward_lanes(const SumsArgs<T>& a, const T* y, int64_t ys_q, int64_t ys_n, T* out) {
  const int64_t N = a.N, O = a.O;
  point_blocks(N, kTile, [&](int64_t n0, int64_t nl) {
    EdgeTile<T> s;
    T phi[kTile];
    std::vector<T> yb(O * kTile);
    load_block<T>(y, ys_q, ys_n, n0, nl, O, yb.data(), kTile, 1);
    for (int64_t p = 0; p < a.I; ++p) {
      sums_lanes<T, kTile>(a, p, n0, nl, nullptr, 0, 0, s);
      T* o = out + p * N + n0;
      for (int64_t l = 0; l < nl; ++l) o[l] = 0;
      for (int64_t q = 0; q < O; ++q) {
        sums_edge<T>(a, s, q, a.base ? a.wbt[p * O + q] : T(0), nl, phi);
        const T* yq = yb.data() + q * kTile;
#pragma omp simd
        for (int64_t l = 0; l < nl; ++l) o[l] += yq[l] * phi[l];
      }
    }
  });
}

template <typename T>
void sums_adjoint_lanes(const SumsArgs<T>& a, const T* y, int64_t ys_q, int64_t ys_n, const T* z, int64_t zs_p,
                        int64_t zs_n, int64_t R, T* dtab, T* dwbt) {
  const int64_t O = a.O;
  ThreadSums<T> tab(a.spline ? dtab : nullptr, R * O), wsum(a.base ? dwbt : nullptr, a.I * O);
  point_blocks(a.N, kTile, [&](int64_t n0, int64_t nl) {
    T* dt = tab.mine();
    T* dw = wsum.mine();
    EdgeTile<T> s;
    std::vector<T> yb(O * kTile);
    load_block<T>(y, ys_q, ys_n, n0, nl, O, yb.data(), kTile, 1);
    for (int64_t p = 0; p < a.I; ++p) {
      sums_lanes<T, kTile>(a, p, n0, nl, z, zs_p, zs_n, s);
      for (int64_t q = 0; q < O; ++q) {
        const T* yq = yb.data() + q * kTile;
        if (dt) {  // scattered point by point: points of a tile may share a block
          T* col = dt + q;
          for (int64_t l = 0; l < nl; ++l) {
            T* c = col + s.row[l];
            for (int64_t i = 0; i < a.nm; ++i) c[i * O] += s.c[i][l] * yq[l];
          }
        }
        if (dw) {
          T acc = 0;
#pragma omp simd reduction(+ : acc)
          for (int64_t l = 0; l < nl; ++l) acc += s.cb[l] * yq[l];
          dw[p * O + q] += acc;
        }
      }
    }
  });
  tab.finish();
  wsum.finish();
}

// Lanes (points as SIMD lanes, gathered table entries) or rows (one point at a time, vectorised
// over the output columns): path 1 rows, 2 lanes, 0 by the output width.
template <typename T>
inline bool use_lanes(const SumsArgs<T>& a, int64_t path) {
  return path == 2 || (path == 0 && a.O < 2 * Block<T>::B);
}

// The arguments shared by the three kernels.  table / wb undefined or empty: that branch is absent.
template <typename T>
SumsArgs<T> make_sums_args(const torch::Tensor& u, const torch::Tensor& ih, const torch::Tensor& blk,
                           const torch::Tensor& h, const torch::Tensor& aux, int64_t kind, const torch::Tensor& table,
                           const torch::Tensor& wbt, int64_t O, int64_t k, int64_t r) {
  SumsArgs<T> a;
  a.I = u.size(0); a.N = u.size(1); a.O = O; a.k = k; a.r = r;
  a.spline = table.defined() && table.numel() > 0 && r <= k;
  a.base = wbt.defined() && wbt.numel() > 0;
  a.nm = a.spline ? k + 1 - r : 0;
  a.u = u.data_ptr<T>(); a.ih = ih.data_ptr<T>(); a.blk = blk.data_ptr<int64_t>();
  a.ih_p = ih.stride(0); a.ih_n = ih.stride(1);
  a.table = a.spline ? table.data_ptr<T>() : nullptr;
  a.kind = a.base ? (int)kind : (int)kNone;
  a.wbt = a.base ? wbt.data_ptr<T>() : nullptr;
  a.h = a.base ? h.data_ptr<T>() : nullptr;
  a.aux = a.base && (kind == kSilu || kind == kTanh) ? aux.data_ptr<T>() : nullptr;
  return a;
}

void check_sums(const torch::Tensor& u, const torch::Tensor& ih, const torch::Tensor& blk, const torch::Tensor& h,
                const torch::Tensor& aux, int64_t kind, const torch::Tensor& table, const torch::Tensor& wbt,
                int64_t O, int64_t k, int64_t r) {
  TORCH_CHECK(k >= 1 && k <= 8, "sums kernel: spline order must be 1..8, got ", k);
  TORCH_CHECK(r >= 0 && r <= 3, "sums kernel: derivative order must be 0..3, got ", r);
  TORCH_CHECK(u.dim() == 2 && u.is_contiguous() && blk.is_contiguous() && blk.sizes() == u.sizes() &&
                  blk.scalar_type() == torch::kLong,
              "sums kernel: u and blk must be contiguous (I, N), blk int64");
  TORCH_CHECK(ih.dim() == 2 && ih.size(0) == u.size(0) && (ih.size(1) == u.size(1) || ih.stride(1) == 0) &&
                  ih.scalar_type() == u.scalar_type(),
              "sums kernel: ih must be (I, N) or broadcast from (I, 1)");
  const int64_t I = u.size(0);
  if (table.defined() && table.numel() > 0)
    TORCH_CHECK(table.is_contiguous() && table.dim() == 2 && table.size(1) == O && table.size(0) % (k + 1) == 0 &&
                    table.scalar_type() == u.scalar_type(),
                "sums kernel: table must be contiguous (rows, O), rows a multiple of k + 1");
  if (wbt.defined() && wbt.numel() > 0) {
    TORCH_CHECK(wbt.is_contiguous() && wbt.dim() == 2 && wbt.size(0) == I && wbt.size(1) == O &&
                    wbt.scalar_type() == u.scalar_type(),
                "sums kernel: wb must be (O, I), passed transposed and contiguous");
    TORCH_CHECK(kind >= kSilu && kind <= kIdentity, "sums kernel: base kind must be 1..3, got ", kind);
    TORCH_CHECK(h.is_contiguous() && h.sizes() == u.sizes(), "sums kernel: h must be contiguous (I, N)");
    TORCH_CHECK(kind == kIdentity || (aux.is_contiguous() && aux.sizes() == u.sizes()),
                "sums kernel: aux must be contiguous (I, N)");
  }
}

void check_plane(const c10::optional<torch::Tensor>& t, int64_t rows, int64_t N, const torch::Tensor& like,
                 const char* what) {
  if (!t.has_value() || !t->defined()) return;
  TORCH_CHECK(t->dim() == 2 && t->size(0) == rows && t->size(1) == N && t->scalar_type() == like.scalar_type(),
              "sums kernel: ", what, " must be (", rows, ", N) of the inputs' dtype");
}

}  // namespace

// z (I, N) any strides, or None (ones) -> out (O, N)
torch::Tensor sums_forward(torch::Tensor u, torch::Tensor ih, torch::Tensor blk, torch::Tensor h, torch::Tensor aux,
                           int64_t kind, torch::Tensor table, torch::Tensor wbt, int64_t O, int64_t k, int64_t r,
                           c10::optional<torch::Tensor> z, int64_t path) {
  check_sums(u, ih, blk, h, aux, kind, table, wbt, O, k, r);
  check_plane(z, u.size(0), u.size(1), u, "z");
  auto out = torch::empty({O, u.size(1)}, u.options());
  const bool hz = z.has_value() && z->defined();
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "kanpde_sums_forward", [&] {
    auto a = make_sums_args<scalar_t>(u, ih, blk, h, aux, kind, table, wbt, O, k, r);
    if (!a.spline && !a.base) { out.zero_(); return; }
    const scalar_t* zp = hz ? z->data_ptr<scalar_t>() : nullptr;
    const int64_t s0 = hz ? z->stride(0) : 0, s1 = hz ? z->stride(1) : 0;
    if (use_lanes(a, path))
      sums_forward_lanes<scalar_t>(a, zp, s0, s1, out.data_ptr<scalar_t>());
    else
      sums_forward_rows<scalar_t>(a, zp, s0, s1, out.data_ptr<scalar_t>());
  });
  return out;
}

// y (O, N) any strides -> out (I, N)
torch::Tensor sums_backward(torch::Tensor u, torch::Tensor ih, torch::Tensor blk, torch::Tensor h, torch::Tensor aux,
                            int64_t kind, torch::Tensor table, torch::Tensor wbt, int64_t O, int64_t k, int64_t r,
                            torch::Tensor y, int64_t path) {
  check_sums(u, ih, blk, h, aux, kind, table, wbt, O, k, r);
  check_plane(y, O, u.size(1), u, "y");
  auto out = torch::empty({u.size(0), u.size(1)}, u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "kanpde_sums_backward", [&] {
    auto a = make_sums_args<scalar_t>(u, ih, blk, h, aux, kind, table, wbt, O, k, r);
    if (!a.spline && !a.base) { out.zero_(); return; }
    if (use_lanes(a, path))
      sums_backward_lanes<scalar_t>(a, y.data_ptr<scalar_t>(), y.stride(0), y.stride(1), out.data_ptr<scalar_t>());
    else
      sums_backward_rows<scalar_t>(a, y.data_ptr<scalar_t>(), y.stride(0), y.stride(1), out.data_ptr<scalar_t>());
  });
  return out;
}

// y (O, N), z (I, N) or None (ones), any strides -> [dtable (rows, O), dwb (O, I)], each undefined
// unless wanted (want_w: the layer has a base branch of this kind)
std::vector<torch::Tensor> sums_adjoint(torch::Tensor u, torch::Tensor ih, torch::Tensor blk, torch::Tensor h,
                                        torch::Tensor aux, int64_t kind, int64_t k, int64_t r, torch::Tensor y,
                                        c10::optional<torch::Tensor> z, int64_t rows, bool want_t, bool want_w,
                                        int64_t path) {
  const int64_t O = y.size(0);
  auto opt = u.options();
  torch::Tensor none;
  if (want_t && r > k) {  // the splines' r-th derivative vanishes: so does its adjoint
    auto rest = sums_adjoint(u, ih, blk, h, aux, kind, k, r, y, z, rows, false, want_w, path);
    return {torch::zeros({rows, O}, opt), rest[1]};
  }
  torch::Tensor dt = want_t ? torch::empty({rows, O}, opt) : none;
  torch::Tensor dwt = want_w ? torch::empty({u.size(0), O}, opt) : none;
  // the outputs stand in for the table and wb: they mark the branches, their values are not read
  check_sums(u, ih, blk, h, aux, kind, dt, dwt, O, k, r);
  check_plane(y, O, u.size(1), u, "y");
  check_plane(z, u.size(0), u.size(1), u, "z");
  TORCH_CHECK(rows % (k + 1) == 0, "sums kernel: rows must be a multiple of k + 1");
  const bool hz = z.has_value() && z->defined();
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "kanpde_sums_adjoint", [&] {
    auto a = make_sums_args<scalar_t>(u, ih, blk, h, aux, kind, dt, dwt, O, k, r);
    const scalar_t* zp = hz ? z->data_ptr<scalar_t>() : nullptr;
    const int64_t s0 = hz ? z->stride(0) : 0, s1 = hz ? z->stride(1) : 0;
    scalar_t* pt = want_t ? dt.data_ptr<scalar_t>() : nullptr;
    scalar_t* pw = want_w ? dwt.data_ptr<scalar_t>() : nullptr;
    if (use_lanes(a, path))
      sums_adjoint_lanes<scalar_t>(a, y.data_ptr<scalar_t>(), y.stride(0), y.stride(1), zp, s0, s1, rows, pt, pw);
    else
      sums_adjoint_rows<scalar_t>(a, y.data_ptr<scalar_t>(), y.stride(0), y.stride(1), zp, s0, s1, rows, pt, pw);
  });
  return {dt, want_w ? dwt.t().contiguous() : dwt};
}
