// Fused, numerically stable softmax + cross-entropy on integer labels.
//
// Forward: one warp per row (the class count of a classifier is small, and a warp
// reduces with shuffles, no shared memory or barriers). It keeps each row's max and
// log-sum-exp of the shifted logits for the backward pass. A label outside
// [0, classes) gives a NaN loss: raising would need a host synchronisation.

template <typename T>
__device__ __forceinline__ void softmax_ce_forward_body(
    const T* __restrict__ logits, const i64* __restrict__ labels, T* __restrict__ losses,
    T* __restrict__ row_max, T* __restrict__ log_sum, i64 rows, int classes) {
    const int lane = threadIdx.x & 31;
    const i64 warps_per_block = blockDim.x >> 5;
    // `row` depends only on the warp, so the whole warp runs each iteration together
    // and the full-mask shuffles are safe.
    for (i64 row = (i64)blockIdx.x * warps_per_block + (threadIdx.x >> 5); row < rows;
         row += (i64)gridDim.x * warps_per_block) {
        const T* r = logits + row * classes;
        T m = neg_infinity<T>();
        for (int c = lane; c < classes; c += 32) {
            const T v = r[c];
            if (!is_nan(m) && (is_nan(v) || v > m)) m = v;
        }
        m = warp_max(m);
        T s = T(0);
        for (int c = lane; c < classes; c += 32) s += dev_exp(r[c] - m);
        s = warp_sum(s);
        if (lane == 0) {
            const T ls = dev_log(s);
            const i64 label = labels[row];
            // -log softmax[label] = log(sum exp(x - m)) - (x[label] - m), the same
            // grouping as the reference, which keeps large logits accurate.
            losses[row] = (label >= 0 && label < classes) ? ls - (r[label] - m)
                                                          : quiet_nan<T>();
            row_max[row] = m;
            log_sum[row] = ls;
        }
    }
}

// d loss_n / d logits[n, c] = gloss[n] * (softmax[n, c] - [c == label_n]).
template <typename T>
__device__ __forceinline__ void softmax_ce_backward_body(
    const T* __restrict__ gloss, const T* __restrict__ logits,
    const i64* __restrict__ labels, const T* __restrict__ row_max,
    const T* __restrict__ log_sum, T* __restrict__ glogits, i64 rows, int classes) {
    FOR_ELEMENTS(idx, rows * classes) {
        const i64 row = idx / classes;
        const int c = (int)(idx - row * classes);
        T p = dev_exp((logits[idx] - row_max[row]) - log_sum[row]);
        if ((i64)c == labels[row]) p -= T(1);
        glogits[idx] = p * gloss[row];
    }
}

#define SOFTMAX_CE_ENTRIES(T, SUFFIX)                                                   \
    extern "C" __global__ void softmax_ce_forward_##SUFFIX(                              \
        const T* logits, const i64* labels, T* losses, T* row_max, T* log_sum,           \
        i64 rows, int classes) {                                                        \
        softmax_ce_forward_body<T>(logits, labels, losses, row_max, log_sum, rows,       \
                                   classes);                                            \
    }                                                                                   \
    extern "C" __global__ void softmax_ce_backward_##SUFFIX(                             \
        const T* gloss, const T* logits, const i64* labels, const T* row_max,            \
        const T* log_sum, T* glogits, i64 rows, int classes) {                          \
        softmax_ce_backward_body<T>(gloss, logits, labels, row_max, log_sum, glogits,    \
                                    rows, classes);                                     \
    }

SOFTMAX_CE_ENTRIES(float, f32)
SOFTMAX_CE_ENTRIES(double, f64)
