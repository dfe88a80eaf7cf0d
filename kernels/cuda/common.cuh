// Helpers shared by every kernels/cuda/*.cu source.
//
// compile.py pastes this text in front of each source instead of using #include:
// CuPy's on-disk kernel cache hashes the source text it is given, not the headers
// that text includes, so an edit here would otherwise be served a stale binary.
//
// Launch geometry convention: grids are 2-D. blockIdx.y walks "rows" (image planes,
// matrix rows) with a grid-stride loop, because gridDim.y is capped at 65535;
// blockIdx.x / threadIdx.x walk the contiguous run inside a row, also grid-stride.
// Per-row counts are int (the Python side checks they fit), every offset that
// multiplies a row index is 64-bit.

typedef long long i64;
typedef unsigned long long u64;

#define FOR_ROWS(row, rows) \
    for (i64 row = blockIdx.y; row < (i64)(rows); row += gridDim.y)

#define FOR_COLUMNS(col, cols) \
    for (int col = blockIdx.x * blockDim.x + threadIdx.x; col < (cols); \
         col += blockDim.x * gridDim.x)

#define FOR_ELEMENTS(idx, count) \
    for (i64 idx = (i64)blockIdx.x * blockDim.x + threadIdx.x; idx < (i64)(count); \
         idx += (i64)blockDim.x * gridDim.x)

// Overloads so one template body serves float and double with the precise
// (not the fast-math) library functions.
__device__ __forceinline__ float dev_exp(float v) { return expf(v); }
__device__ __forceinline__ double dev_exp(double v) { return exp(v); }
__device__ __forceinline__ float dev_log(float v) { return logf(v); }
__device__ __forceinline__ double dev_log(double v) { return log(v); }
__device__ __forceinline__ float dev_sqrt(float v) { return sqrtf(v); }
__device__ __forceinline__ double dev_sqrt(double v) { return sqrt(v); }
__device__ __forceinline__ float dev_tanh(float v) { return tanhf(v); }
__device__ __forceinline__ double dev_tanh(double v) { return tanh(v); }

template <typename T> __device__ __forceinline__ T neg_infinity();
template <> __device__ __forceinline__ float neg_infinity<float>() {
    return __int_as_float(0xff800000);
}
template <> __device__ __forceinline__ double neg_infinity<double>() {
    return __longlong_as_double(0xfff0000000000000LL);
}

template <typename T> __device__ __forceinline__ T quiet_nan();
template <> __device__ __forceinline__ float quiet_nan<float>() {
    return __int_as_float(0x7fffffff);
}
template <> __device__ __forceinline__ double quiet_nan<double>() {
    return __longlong_as_double(0x7fffffffffffffffLL);
}

// x != x is the NaN test that needs no library header.
template <typename T> __device__ __forceinline__ bool is_nan(T v) { return v != v; }

template <typename T> __device__ __forceinline__ T warp_sum(T v) {
    for (int offset = 16; offset > 0; offset >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

template <typename T> __device__ __forceinline__ T warp_max(T v) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        T other = __shfl_xor_sync(0xffffffffu, v, offset);
        // Propagate NaN the way NumPy's max does.
        if (!is_nan(v) && (is_nan(other) || other > v)) v = other;
    }
    return v;
}

// Sum over the whole block, in a fixed order (deterministic). blockDim.x must be a
// multiple of 32 and at most 1024; every thread of the block must call it. The
// result is valid in thread 0.
template <typename T> __device__ __forceinline__ T block_sum(T v) {
    __shared__ T partial[32];
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    v = warp_sum(v);
    __syncthreads();  // partial[] may still be read by a previous call
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    const int warps = blockDim.x >> 5;
    v = (threadIdx.x < warps) ? partial[threadIdx.x] : T(0);
    if (warp == 0) v = warp_sum(v);
    return v;
}

// First window position (in row-major window order) and the range of output
// indices whose window covers padded coordinate `padded` along one axis:
// out * stride <= padded < out * stride + kernel, clipped to [0, out_size).
__device__ __forceinline__ void covering_windows(int padded, int kernel, int stride,
                                                 int out_size, int* first, int* last) {
    *first = (padded < kernel) ? 0 : (padded - kernel) / stride + 1;
    *last = min(padded / stride, out_size - 1);
}

// Activations a kernel can apply to its own output. The codes are ACTIVATION_CODES
// in compile.py. Each derivative is written in terms of the output y, so backward
// needs no copy of the input.
#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_TANH 2
#define ACT_SIGMOID 3

template <typename T> __device__ __forceinline__ T activate(int act, T v) {
    if (act == ACT_RELU) return (v > T(0) || is_nan(v)) ? v : T(0);  // NaN propagates, as np.maximum
    if (act == ACT_TANH) return dev_tanh(v);
    if (act == ACT_SIGMOID) {
        const T e = dev_exp(v < T(0) ? v : -v);  // exp of a non-positive number: no overflow
        return v >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
    }
    return v;
}

// The gradient of the activation's input, given g (of its output) and y (its output).
template <typename T> __device__ __forceinline__ T activation_grad(int act, T g, T y) {
    if (act == ACT_RELU) return y > T(0) ? g : T(0);
    if (act == ACT_TANH) return g * (T(1) - y * y);
    if (act == ACT_SIGMOID) return g * y * (T(1) - y);
    return g;
}
