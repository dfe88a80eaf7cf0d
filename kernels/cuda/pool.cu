// Max and average pooling over NCHW planes: one thread per output element in the
// forward pass, one thread per input element in the backward pass (a gather, so
// no atomics and the same bits every run).

// Window maxima. Padding counts as -inf (PyTorch's rule); the winner is the first
// maximum in row-major window order, and the first NaN once one is seen (NumPy's
// argmax). The search starts from the first in-bounds element, so padding never
// wins a tie: a window whose elements are all -inf sends its gradient to that first
// element, as PyTorch does. argmax holds the winner's flat index inside its input
// plane, or -1 for a window with no in-bounds element (its output is -inf).
template <typename T>
__device__ __forceinline__ void max_pool_forward_body(
    const T* __restrict__ x, T* __restrict__ y, int* __restrict__ argmax, int planes,
    int h, int w, int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow) {
    const int plane_in = h * w;
    const int plane_out = oh * ow;
    FOR_ROWS(plane, planes) {
        const T* x_plane = x + plane * plane_in;
        FOR_COLUMNS(q, plane_out) {
            const int oy = q / ow;
            const int ox = q - oy * ow;
            const int y0 = oy * sh - ph;
            const int x0 = ox * sw - pw;
            T best = neg_infinity<T>();
            int best_index = -1;  // -1 until the first in-bounds element
            for (int i = 0; i < kh; ++i) {
                const int yy = y0 + i;
                if (yy < 0 || yy >= h) continue;
                for (int j = 0; j < kw; ++j) {
                    const int xx = x0 + j;
                    if (xx < 0 || xx >= w) continue;
                    const T v = x_plane[yy * w + xx];
                    if (best_index < 0 || (!is_nan(best) && (is_nan(v) || v > best))) {
                        best = v;
                        best_index = yy * w + xx;
                    }
                }
            }
            y[plane * plane_out + q] = best;
            argmax[plane * plane_out + q] = best_index;
        }
    }
}

// Each input element sums the output gradients of the windows it won.
template <typename T>
__device__ __forceinline__ void max_pool_backward_body(
    const T* __restrict__ gy, const int* __restrict__ argmax, T* __restrict__ gx,
    int planes, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw, int oh,
    int ow) {
    const int plane_in = h * w;
    const int plane_out = oh * ow;
    FOR_ROWS(plane, planes) {
        const T* gy_plane = gy + plane * plane_out;
        const int* arg_plane = argmax + plane * plane_out;
        FOR_COLUMNS(pix, plane_in) {
            const int yy = pix / w;
            const int xx = pix - yy * w;
            int oy_first, oy_last, ox_first, ox_last;
            covering_windows(yy + ph, kh, sh, oh, &oy_first, &oy_last);
            covering_windows(xx + pw, kw, sw, ow, &ox_first, &ox_last);
            T acc = T(0);
            for (int oy = oy_first; oy <= oy_last; ++oy)
                for (int ox = ox_first; ox <= ox_last; ++ox) {
                    const int q = oy * ow + ox;
                    if (arg_plane[q] == pix) acc += gy_plane[q];
                }
            gx[plane * plane_in + pix] = acc;
        }
    }
}

// Window means with zero padding counted in the divisor (count_include_pad=True).
template <typename T>
__device__ __forceinline__ void avg_pool_forward_body(
    const T* __restrict__ x, T* __restrict__ y, int planes, int h, int w, int kh,
    int kw, int sh, int sw, int ph, int pw, int oh, int ow) {
    const int plane_in = h * w;
    const int plane_out = oh * ow;
    const T area = T(kh * kw);
    FOR_ROWS(plane, planes) {
        const T* x_plane = x + plane * plane_in;
        FOR_COLUMNS(q, plane_out) {
            const int oy = q / ow;
            const int ox = q - oy * ow;
            const int y0 = oy * sh - ph;
            const int x0 = ox * sw - pw;
            T acc = T(0);
            for (int i = max(0, -y0); i < kh && y0 + i < h; ++i)
                for (int j = max(0, -x0); j < kw && x0 + j < w; ++j)
                    acc += x_plane[(y0 + i) * w + x0 + j];
            y[plane * plane_out + q] = acc / area;
        }
    }
}

// Each input element sums an equal share of every window that covers it.
template <typename T>
__device__ __forceinline__ void avg_pool_backward_body(
    const T* __restrict__ gy, T* __restrict__ gx, int planes, int h, int w, int kh,
    int kw, int sh, int sw, int ph, int pw, int oh, int ow) {
    const int plane_in = h * w;
    const int plane_out = oh * ow;
    const T area = T(kh * kw);
    FOR_ROWS(plane, planes) {
        const T* gy_plane = gy + plane * plane_out;
        FOR_COLUMNS(pix, plane_in) {
            const int yy = pix / w;
            const int xx = pix - yy * w;
            int oy_first, oy_last, ox_first, ox_last;
            covering_windows(yy + ph, kh, sh, oh, &oy_first, &oy_last);
            covering_windows(xx + pw, kw, sw, ow, &ox_first, &ox_last);
            T acc = T(0);
            for (int oy = oy_first; oy <= oy_last; ++oy)
                for (int ox = ox_first; ox <= ox_last; ++ox)
                    acc += gy_plane[oy * ow + ox] / area;
            gx[plane * plane_in + pix] = acc;
        }
    }
}

#define POOL_ENTRIES(T, SUFFIX)                                                        \
    extern "C" __global__ void max_pool_forward_##SUFFIX(                               \
        const T* x, T* y, int* argmax, int planes, int h, int w, int kh, int kw,        \
        int sh, int sw, int ph, int pw, int oh, int ow) {                              \
        max_pool_forward_body<T>(x, y, argmax, planes, h, w, kh, kw, sh, sw, ph, pw,    \
                                 oh, ow);                                              \
    }                                                                                  \
    extern "C" __global__ void max_pool_backward_##SUFFIX(                              \
        const T* gy, const int* argmax, T* gx, int planes, int h, int w, int kh,        \
        int kw, int sh, int sw, int ph, int pw, int oh, int ow) {                      \
        max_pool_backward_body<T>(gy, argmax, gx, planes, h, w, kh, kw, sh, sw, ph, pw, \
                                  oh, ow);                                             \
    }                                                                                  \
    extern "C" __global__ void avg_pool_forward_##SUFFIX(                               \
        const T* x, T* y, int planes, int h, int w, int kh, int kw, int sh, int sw,     \
        int ph, int pw, int oh, int ow) {                                              \
        avg_pool_forward_body<T>(x, y, planes, h, w, kh, kw, sh, sw, ph, pw, oh, ow);   \
    }                                                                                  \
    extern "C" __global__ void avg_pool_backward_##SUFFIX(                              \
        const T* gy, T* gx, int planes, int h, int w, int kh, int kw, int sh, int sw,   \
        int ph, int pw, int oh, int ow) {                                              \
        avg_pool_backward_body<T>(gy, gx, planes, h, w, kh, kw, sh, sw, ph, pw, oh, ow);\
    }

POOL_ENTRIES(float, f32)
POOL_ENTRIES(double, f64)
