// Convolution by im2col + cuBLAS GEMM (the GEMMs run in CuPy), and the layout
// changes around them.
//
// Column layout: cols[k][q] with k = (c * KH + i) * KW + j (the row of the OIHW
// weight matrix) and q = (n * OH + oy) * OW + ox, so that one plain GEMM
// W(O, K) @ cols(K, N*OH*OW) computes the whole batch. Its result is channel-major
// (O, N*P) and is turned into NCHW by rows_to_nchw (which also adds the bias).

template <typename T>
__device__ __forceinline__ void im2col_body(
    const T* __restrict__ x, T* __restrict__ cols, int n, int c, int h, int w,
    int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow) {
    const int plane_out = oh * ow;
    const int row_len = n * plane_out;  // checked to fit an int on the Python side
    FOR_ROWS(k, (i64)c * kh * kw) {
        const int j = (int)(k % kw);
        const int i = (int)((k / kw) % kh);
        const int ci = (int)(k / ((i64)kw * kh));
        T* out_row = cols + k * row_len;
        FOR_COLUMNS(q, row_len) {
            const int ni = q / plane_out;
            const int p = q - ni * plane_out;
            const int oy = p / ow;
            const int ox = p - oy * ow;
            const int y = oy * sh - ph + i;
            const int xx = ox * sw - pw + j;
            T v = T(0);
            if (y >= 0 && y < h && xx >= 0 && xx < w)
                v = x[(((i64)ni * c + ci) * h + y) * w + xx];
            out_row[q] = v;
        }
    }
}

// The adjoint of im2col as a gather: each input element sums the column entries
// that were copied from it, in a fixed order. No atomics, so results repeat bit
// for bit.
template <typename T>
__device__ __forceinline__ void col2im_body(
    const T* __restrict__ cols, T* __restrict__ gx, int n, int c, int h, int w,
    int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow) {
    const int plane_out = oh * ow;
    const i64 row_len = (i64)n * plane_out;
    const int plane_in = h * w;
    FOR_ROWS(plane, (i64)n * c) {
        const int ni = (int)(plane / c);
        const int ci = (int)(plane - (i64)ni * c);
        FOR_COLUMNS(pix, plane_in) {
            const int y = pix / w;
            const int xx = pix - y * w;
            int oy_first, oy_last, ox_first, ox_last;
            covering_windows(y + ph, kh, sh, oh, &oy_first, &oy_last);
            covering_windows(xx + pw, kw, sw, ow, &ox_first, &ox_last);
            T acc = T(0);
            for (int oy = oy_first; oy <= oy_last; ++oy) {
                const int i = y + ph - oy * sh;
                for (int ox = ox_first; ox <= ox_last; ++ox) {
                    const int j = xx + pw - ox * sw;
                    const i64 k = ((i64)ci * kh + i) * kw + j;
                    acc += cols[k * row_len + (i64)ni * plane_out + oy * ow + ox];
                }
            }
            gx[plane * plane_in + pix] = acc;
        }
    }
}

// (O, N*P) channel-major GEMM result -> (N, O, P) NCHW, plus the bias, then the
// activation (a fused conv + bias + activation costs no pass of its own).
template <typename T>
__device__ __forceinline__ void rows_to_nchw_body(
    const T* __restrict__ src, const T* __restrict__ bias, T* __restrict__ dst,
    int n, int o, int plane, int has_bias, int act) {
    const i64 row_len = (i64)n * plane;
    FOR_ROWS(dst_plane, (i64)n * o) {
        const int ni = (int)(dst_plane / o);
        const int oi = (int)(dst_plane - (i64)ni * o);
        const T b = has_bias ? bias[oi] : T(0);
        const T* src_row = src + oi * row_len + (i64)ni * plane;
        T* dst_row = dst + dst_plane * plane;
        FOR_COLUMNS(p, plane) dst_row[p] = activate(act, src_row[p] + b);
    }
}

// (N, O, P) NCHW gradient of the activated output -> (O, N*P) channel-major
// gradient of the pre-activation (the derivative taken from the output y, which is
// only read when act != ACT_NONE), and (when plane_sums is wanted) each plane's
// sum, for the bias gradient. One block per plane so the sum is a deterministic
// block reduction. Launch with gridDim.y == 1.
template <typename T>
__device__ __forceinline__ void nchw_to_rows_body(
    const T* __restrict__ src, const T* __restrict__ y, T* __restrict__ dst,
    double* __restrict__ plane_sums, int n, int o, int plane, int want_sums, int act) {
    const i64 row_len = (i64)n * plane;
    for (i64 src_plane = blockIdx.x; src_plane < (i64)n * o; src_plane += gridDim.x) {
        const int ni = (int)(src_plane / o);
        const int oi = (int)(src_plane - (i64)ni * o);
        const T* src_row = src + src_plane * plane;
        const T* y_row = y + src_plane * plane;
        T* dst_row = dst + oi * row_len + (i64)ni * plane;
        double acc = 0.0;
        for (int p = threadIdx.x; p < plane; p += blockDim.x) {
            const T v = act == ACT_NONE ? src_row[p] : activation_grad(act, src_row[p], y_row[p]);
            dst_row[p] = v;
            acc += (double)v;
        }
        if (want_sums) {  // uniform across the block, so block_sum's barriers are safe
            acc = block_sum(acc);
            if (threadIdx.x == 0) plane_sums[src_plane] = acc;
        }
    }
}

// gb[o] = sum over n of plane_sums[n, o], summed in order n = 0, 1, ...
template <typename T>
__device__ __forceinline__ void bias_grad_body(
    const double* __restrict__ plane_sums, T* __restrict__ gb, int n, int o) {
    FOR_ELEMENTS(oi, o) {
        double acc = 0.0;
        for (int ni = 0; ni < n; ++ni) acc += plane_sums[(i64)ni * o + oi];
        gb[oi] = (T)acc;
    }
}

#define CONV_ENTRIES(T, SUFFIX)                                                       \
    extern "C" __global__ void im2col_##SUFFIX(                                        \
        const T* x, T* cols, int n, int c, int h, int w, int kh, int kw, int sh,       \
        int sw, int ph, int pw, int oh, int ow) {                                     \
        im2col_body<T>(x, cols, n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow);           \
    }                                                                                 \
    extern "C" __global__ void col2im_##SUFFIX(                                        \
        const T* cols, T* gx, int n, int c, int h, int w, int kh, int kw, int sh,      \
        int sw, int ph, int pw, int oh, int ow) {                                     \
        col2im_body<T>(cols, gx, n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow);          \
    }                                                                                 \
    extern "C" __global__ void rows_to_nchw_##SUFFIX(                                  \
        const T* src, const T* bias, T* dst, int n, int o, int plane, int has_bias,    \
        int act) {                                                                    \
        rows_to_nchw_body<T>(src, bias, dst, n, o, plane, has_bias, act);              \
    }                                                                                 \
    extern "C" __global__ void nchw_to_rows_##SUFFIX(                                  \
        const T* src, const T* y, T* dst, double* plane_sums, int n, int o, int plane, \
        int want_sums, int act) {                                                     \
        nchw_to_rows_body<T>(src, y, dst, plane_sums, n, o, plane, want_sums, act);    \
    }                                                                                 \
    extern "C" __global__ void bias_grad_##SUFFIX(                                     \
        const double* plane_sums, T* gb, int n, int o) {                              \
        bias_grad_body<T>(plane_sums, gb, n, o);                                       \
    }

CONV_ENTRIES(float, f32)
CONV_ENTRIES(double, f64)
