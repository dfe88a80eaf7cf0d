// Elementwise activations, forward and backward, one pass each: the same activate()
// and activation_grad() (common.cuh) that the convolution applies fused, here for an
// activation that follows anything else (a Dense layer, say). CuPy's expressions for
// the same would take one kernel per operator (ReLU's backward two, sigmoid's six).

template <typename T>
__device__ __forceinline__ void activation_forward_body(const T* __restrict__ x,
                                                        T* __restrict__ y, i64 count,
                                                        int act) {
    FOR_ELEMENTS(i, count) y[i] = activate(act, x[i]);
}

template <typename T>
__device__ __forceinline__ void activation_backward_body(const T* __restrict__ gy,
                                                         const T* __restrict__ y,
                                                         T* __restrict__ gx, i64 count,
                                                         int act) {
    FOR_ELEMENTS(i, count) gx[i] = activation_grad(act, gy[i], y[i]);
}

#define ACTIVATION_ENTRIES(T, SUFFIX)                                                  \
    extern "C" __global__ void activation_forward_##SUFFIX(const T* x, T* y,            \
                                                          long long count, int act) {   \
        activation_forward_body<T>(x, y, count, act);                                   \
    }                                                                                  \
    extern "C" __global__ void activation_backward_##SUFFIX(                            \
        const T* gy, const T* y, T* gx, long long count, int act) {                     \
        activation_backward_body<T>(gy, y, gx, count, act);                             \
    }

ACTIVATION_ENTRIES(float, f32)
ACTIVATION_ENTRIES(double, f64)
