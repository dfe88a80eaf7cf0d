// A tiled matrix product that can be captured in a CUDA graph:
//     C[b] = op(A[b]) @ op(B[b])        (or C[b] += ..., with `accumulate`)
// for row-major matrices, op(X) = X or X^T, over a batch b (a batch stride of 0
// shares one matrix across the batch).
//
// cuBLAS is faster and the default everywhere, inside CUDA-graph captures too (through
// minigrad's own handle, cublas_capture.py); captures use this kernel instead with
// MINIGRAD_CAPTURE_GEMM=custom, for a cuBLAS that cannot be called there.
//
// Each block computes one GEMM_BM x GEMM_BN tile of C over one slice of K: 256
// threads, each accumulating a 4 x 4 sub-tile, reading A and B through shared-memory
// tiles GEMM_BK deep. Thread (tx, ty) owns rows ty + 16 i and columns tx + 16 j, so a
// warp reads 16 consecutive words of the B tile and broadcasts 2 words of the A tile.
//
// Split-K: with `splits` > 1, block slice s covers k in [s * k_chunk, (s + 1) * k_chunk)
// and writes its partial tile to `partials` (batch, splits, M, N); gemm_reduce then
// adds the slices in order s = 0, 1, ... No atomics anywhere, so every result repeats
// bit for bit. Skinny products (a few output tiles, a long K: the dense layer's
// 32 x 12800 @ 12800 x 128) need this to fill the GPU.
//
// The products use explicit fused multiply-adds (dev_fma): compile.py turns implicit
// contraction off for the elementwise kernels, and a GEMM without FMA would run at half
// speed. The accumulation order is fixed, so results still repeat exactly.

#define GEMM_BM 64
#define GEMM_BN 64  // = GEMM_BM: load_tile stages A and B tiles alike
#define GEMM_BK 16
#define GEMM_THREADS 256   // 16 x 16 threads, each owning a 4 x 4 sub-tile of C
#define GEMM_SIDE 16
#define GEMM_PAD 4         // keeps the transposing tile stores off a single bank

__device__ __forceinline__ float dev_fma(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double dev_fma(double a, double b, double c) { return fma(a, b, c); }

// Stage one operand's 64 x 16 slice into a shared tile, tile[kk][oo] = op(X)[o0 + oo]
// [k0 + kk] (zero past the edges), for A (o = m) and B (o = n) alike. Each thread
// loads 4 elements; consecutive threads walk the operand's contiguous axis, which is
// k when `k_fastest` (A not transposed, B transposed), so the global reads coalesce.
template <typename T>
__device__ __forceinline__ void load_tile(const T* __restrict__ mat, i64 ld, bool k_fastest,
                                          int o0, int o_size, int k0, int k_end,
                                          T (*tile)[GEMM_BM + GEMM_PAD], int tid) {
    for (int l = 0; l < (GEMM_BM * GEMM_BK) / GEMM_THREADS; ++l) {
        const int idx = tid + l * GEMM_THREADS;
        int oo, kk;
        if (k_fastest) { kk = idx % GEMM_BK; oo = idx / GEMM_BK; }
        else { oo = idx % GEMM_BM; kk = idx / GEMM_BM; }
        const int go = o0 + oo, gk = k0 + kk;
        T v = T(0);
        if (go < o_size && gk < k_end)
            v = k_fastest ? mat[(i64)go * ld + gk] : mat[(i64)gk * ld + go];
        tile[kk][oo] = v;
    }
}

// Launch with GEMM_THREADS threads and tiles_n * tiles_m * splits * batch blocks on x.
// op(A) is m x k: A is stored (m, k) with row pitch lda, or (k, m) when trans_a.
// op(B) is k x n: B is stored (k, n) with row pitch ldb, or (n, k) when trans_b.
template <typename T>
__device__ __forceinline__ void gemm_body(
    const T* __restrict__ a, const T* __restrict__ b, T* c, T* partials, int m, int n,
    int k, i64 lda, i64 ldb, i64 ldc, i64 stride_a, i64 stride_b, i64 stride_c,
    int trans_a, int trans_b, int accumulate, int splits, int k_chunk, int tiles_m,
    int tiles_n) {
    __shared__ T a_tile[GEMM_BK][GEMM_BM + GEMM_PAD];
    __shared__ T b_tile[GEMM_BK][GEMM_BN + GEMM_PAD];
    const int tid = threadIdx.x;
    const int tx = tid % GEMM_SIDE, ty = tid / GEMM_SIDE;

    // blockIdx.x -> (batch, split, tile row, tile column), the tile column fastest.
    i64 rest = blockIdx.x;
    const int tile_n = (int)(rest % tiles_n);
    rest /= tiles_n;
    const int tile_m = (int)(rest % tiles_m);
    rest /= tiles_m;
    const int split = (int)(rest % splits);
    const i64 batch = rest / splits;
    const int m0 = tile_m * GEMM_BM, n0 = tile_n * GEMM_BN;
    const int k_begin = split * k_chunk;
    const int k_end = min(k, k_begin + k_chunk);
    const T* a_mat = a + batch * stride_a;
    const T* b_mat = b + batch * stride_b;

    T acc[4][4];
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) acc[i][j] = T(0);

    for (int k0 = k_begin; k0 < k_end; k0 += GEMM_BK) {
        load_tile(a_mat, lda, !trans_a, m0, m, k0, k_end, a_tile, tid);
        load_tile(b_mat, ldb, (bool)trans_b, n0, n, k0, k_end, b_tile, tid);
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < GEMM_BK; ++kk) {
            T av[4], bv[4];
            for (int i = 0; i < 4; ++i) av[i] = a_tile[kk][ty + GEMM_SIDE * i];
            for (int j = 0; j < 4; ++j) bv[j] = b_tile[kk][tx + GEMM_SIDE * j];
            for (int i = 0; i < 4; ++i)
                for (int j = 0; j < 4; ++j) acc[i][j] = dev_fma(av[i], bv[j], acc[i][j]);
        }
        __syncthreads();  // the tiles are overwritten by the next slice
    }

    for (int i = 0; i < 4; ++i) {
        const int gm = m0 + ty + GEMM_SIDE * i;
        if (gm >= m) continue;
        for (int j = 0; j < 4; ++j) {
            const int gn = n0 + tx + GEMM_SIDE * j;
            if (gn >= n) continue;
            if (splits == 1) {
                T* out = c + batch * stride_c + (i64)gm * ldc + gn;
                *out = accumulate ? *out + acc[i][j] : acc[i][j];
            } else {
                partials[((batch * splits + split) * m + gm) * (i64)n + gn] = acc[i][j];
            }
        }
    }
}

// C[b, i, j] (+)= sum over s = 0, 1, ... of partials[b, s, i, j]; rows are (b, i).
template <typename T>
__device__ __forceinline__ void gemm_reduce_body(
    const T* __restrict__ partials, T* __restrict__ c, int m, int n, i64 ldc,
    i64 stride_c, int batch, int splits, int accumulate) {
    FOR_ROWS(row, (i64)batch * m) {
        const i64 bi = row / m;
        const int mi = (int)(row - bi * m);
        const T* first = partials + (bi * splits * m + mi) * (i64)n;
        const i64 slice = (i64)m * n;
        T* out_row = c + bi * stride_c + (i64)mi * ldc;
        FOR_COLUMNS(col, n) {
            T acc = T(0);
            for (int s = 0; s < splits; ++s) acc += first[s * slice + col];
            out_row[col] = accumulate ? out_row[col] + acc : acc;
        }
    }
}

#define GEMM_ENTRIES(T, SUFFIX)                                                           \
    extern "C" __global__ void gemm_##SUFFIX(                                              \
        const T* a, const T* b, T* c, T* partials, int m, int n, int k, i64 lda, i64 ldb,  \
        i64 ldc, i64 stride_a, i64 stride_b, i64 stride_c, int trans_a, int trans_b,       \
        int accumulate, int splits, int k_chunk, int tiles_m, int tiles_n) {              \
        gemm_body<T>(a, b, c, partials, m, n, k, lda, ldb, ldc, stride_a, stride_b,        \
                     stride_c, trans_a, trans_b, accumulate, splits, k_chunk, tiles_m,    \
                     tiles_n);                                                            \
    }                                                                                     \
    extern "C" __global__ void gemm_reduce_##SUFFIX(                                       \
        const T* partials, T* c, int m, int n, i64 ldc, i64 stride_c, int batch,           \
        int splits, int accumulate) {                                                     \
        gemm_reduce_body<T>(partials, c, m, n, ldc, stride_c, batch, splits, accumulate);  \
    }

GEMM_ENTRIES(float, f32)
GEMM_ENTRIES(double, f64)
