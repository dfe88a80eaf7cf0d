// Fused optimizer steps: one thread per parameter element reads the gradient and
// state once, updates param and state in place, and never writes the gradient.
// The formulas are PyTorch's (torch.optim.SGD, Adam/AdamW, RMSprop, Adagrad),
// term for term as in kernels/reference/optim.py.
//
// Hyperparameters arrive as double and are rounded to T once, which is what NumPy
// does when the reference multiplies a float32 array by a Python float; the
// operations are grouped as the reference groups them (and compile.py turns FMA
// contraction off) so both round alike. Values that depend on the step count (bias
// corrections, the decayed learning rate) come from the host, computed in Python
// exactly as the reference does; when step_on_device is set they are computed here
// in double from *step_ptr instead, so a captured CUDA graph can replay the update
// with a step counter that lives on the device. Likewise the learning rate is read
// from *lr_ptr when lr_on_device is set, so a scheduler can change it between replays.

// The learning rate: the host's value, or the device's when lr_on_device is set.
__device__ __forceinline__ double learning_rate(double lr_host, const double* lr_ptr,
                                                int lr_on_device) {
    return lr_on_device ? *lr_ptr : lr_host;
}

template <typename T>
__device__ __forceinline__ void sgd_body(
    T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ buf, i64 n,
    double lr_host, const double* lr_ptr, int lr_on_device, double momentum_d,
    double dampening_d, double weight_decay_d, int nesterov, int first_step) {
    const T lr = (T)learning_rate(lr_host, lr_ptr, lr_on_device);
    const T momentum = (T)momentum_d, weight_decay = (T)weight_decay_d;
    const T keep_grad = (T)(1.0 - dampening_d);
    FOR_ELEMENTS(i, n) {
        const T p = param[i];
        T d = grad[i];
        if (weight_decay_d != 0.0) d += weight_decay * p;
        if (momentum_d != 0.0) {
            const T b = first_step ? d : buf[i] * momentum + keep_grad * d;
            buf[i] = b;
            d = nesterov ? d + momentum * b : b;
        }
        param[i] = p - lr * d;
    }
}

template <typename T>
__device__ __forceinline__ void adam_body(
    T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ exp_avg,
    T* __restrict__ exp_avg_sq, i64 n, double lr_host, const double* lr_ptr,
    int lr_on_device, double beta1_d, double beta2_d, double eps_d, double weight_decay_d,
    int decoupled, const double* step_ptr, int step_on_device,
    double bias_correction1_host, double bias_correction2_sqrt_host) {
    const double lr_d = learning_rate(lr_host, lr_ptr, lr_on_device);
    double bias_correction1_d = bias_correction1_host;
    double bias_correction2_sqrt_d = bias_correction2_sqrt_host;
    if (step_on_device) {
        const double step = *step_ptr;
        bias_correction1_d = 1.0 - pow(beta1_d, step);
        bias_correction2_sqrt_d = sqrt(1.0 - pow(beta2_d, step));
    }
    // lr / bias_correction1 in double, as the reference divides Python floats.
    const T step_size = (T)(lr_d / bias_correction1_d);
    const T bias_correction2_sqrt = (T)bias_correction2_sqrt_d;
    const T beta2 = (T)beta2_d, eps = (T)eps_d;
    const T one_minus_beta1 = (T)(1.0 - beta1_d), one_minus_beta2 = (T)(1.0 - beta2_d);
    const T weight_decay = (T)weight_decay_d;
    const T decay_factor = (T)(1.0 - lr_d * weight_decay_d);
    FOR_ELEMENTS(i, n) {
        T p = param[i];
        T g = grad[i];
        if (weight_decay_d != 0.0) {
            if (decoupled) p *= decay_factor;  // AdamW: shrink the weight itself
            else g += weight_decay * p;        // Adam: L2 term in the gradient
        }
        const T m0 = exp_avg[i];
        const T m = m0 + one_minus_beta1 * (g - m0);  // PyTorch's lerp_
        const T v = exp_avg_sq[i] * beta2 + one_minus_beta2 * (g * g);
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        const T denom = dev_sqrt(v) / bias_correction2_sqrt + eps;
        param[i] = p - step_size * (m / denom);
    }
}

template <typename T>
__device__ __forceinline__ void rmsprop_body(
    T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ square_avg,
    T* __restrict__ momentum_buffer, T* __restrict__ grad_avg, i64 n, double lr_host,
    const double* lr_ptr, int lr_on_device, double alpha_d, double eps_d,
    double weight_decay_d, double momentum_d, int centered) {
    const T lr = (T)learning_rate(lr_host, lr_ptr, lr_on_device);
    const T alpha = (T)alpha_d, eps = (T)eps_d;
    const T one_minus_alpha = (T)(1.0 - alpha_d);
    const T weight_decay = (T)weight_decay_d, momentum = (T)momentum_d;
    FOR_ELEMENTS(i, n) {
        const T p = param[i];
        T g = grad[i];
        if (weight_decay_d != 0.0) g += weight_decay * p;
        const T sq = square_avg[i] * alpha + one_minus_alpha * (g * g);
        square_avg[i] = sq;
        T avg;
        if (centered) {
            const T ga0 = grad_avg[i];
            const T ga = ga0 + one_minus_alpha * (g - ga0);  // PyTorch's lerp_
            grad_avg[i] = ga;
            avg = dev_sqrt(sq - ga * ga) + eps;
        } else {
            avg = dev_sqrt(sq) + eps;
        }
        if (momentum_d > 0.0) {
            const T b = momentum_buffer[i] * momentum + g / avg;
            momentum_buffer[i] = b;
            param[i] = p - lr * b;
        } else {
            param[i] = p - lr * (g / avg);
        }
    }
}

template <typename T>
__device__ __forceinline__ void adagrad_body(
    T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ state_sum, i64 n,
    double lr_host, const double* lr_ptr, int lr_on_device, double eps_d,
    double weight_decay_d, double lr_decay_d, double step_host, const double* step_ptr,
    int step_on_device) {
    const double lr_d = learning_rate(lr_host, lr_ptr, lr_on_device);
    const double step = step_on_device ? *step_ptr : step_host;
    // The same double operations as the reference's lr / (1 + (step - 1) * lr_decay).
    const T clr = (T)(lr_d / (1.0 + (step - 1.0) * lr_decay_d));
    const T eps = (T)eps_d, weight_decay = (T)weight_decay_d;
    FOR_ELEMENTS(i, n) {
        const T p = param[i];
        T g = grad[i];
        if (weight_decay_d != 0.0) g += weight_decay * p;
        const T s = state_sum[i] + g * g;
        state_sum[i] = s;
        param[i] = p - clr * (g / (dev_sqrt(s) + eps));
    }
}

#define OPTIM_ENTRIES(T, SUFFIX)                                                        \
    extern "C" __global__ void sgd_update_##SUFFIX(                                      \
        T* param, const T* grad, T* buf, i64 n, double lr, const double* lr_ptr,         \
        int lr_on_device, double momentum, double dampening, double weight_decay,       \
        int nesterov, int first_step) {                                                 \
        sgd_body<T>(param, grad, buf, n, lr, lr_ptr, lr_on_device, momentum, dampening,  \
                    weight_decay, nesterov, first_step);                                \
    }                                                                                   \
    extern "C" __global__ void adam_update_##SUFFIX(                                     \
        T* param, const T* grad, T* exp_avg, T* exp_avg_sq, i64 n, double lr,            \
        const double* lr_ptr, int lr_on_device, double beta1, double beta2, double eps, \
        double weight_decay, int decoupled, const double* step_ptr, int step_on_device, \
        double bias_correction1, double bias_correction2_sqrt) {                        \
        adam_body<T>(param, grad, exp_avg, exp_avg_sq, n, lr, lr_ptr, lr_on_device,      \
                     beta1, beta2, eps, weight_decay, decoupled, step_ptr,              \
                     step_on_device, bias_correction1, bias_correction2_sqrt);          \
    }                                                                                   \
    extern "C" __global__ void rmsprop_update_##SUFFIX(                                  \
        T* param, const T* grad, T* square_avg, T* momentum_buffer, T* grad_avg, i64 n,  \
        double lr, const double* lr_ptr, int lr_on_device, double alpha, double eps,    \
        double weight_decay, double momentum, int centered) {                           \
        rmsprop_body<T>(param, grad, square_avg, momentum_buffer, grad_avg, n, lr,       \
                        lr_ptr, lr_on_device, alpha, eps, weight_decay, momentum,       \
                        centered);                                                      \
    }                                                                                   \
    extern "C" __global__ void adagrad_update_##SUFFIX(                                  \
        T* param, const T* grad, T* state_sum, i64 n, double lr, const double* lr_ptr,   \
        int lr_on_device, double eps, double weight_decay, double lr_decay,             \
        double step, const double* step_ptr, int step_on_device) {                      \
        adagrad_body<T>(param, grad, state_sum, n, lr, lr_ptr, lr_on_device, eps,        \
                        weight_decay, lr_decay, step, step_ptr, step_on_device);        \
    }

OPTIM_ENTRIES(float, f32)
OPTIM_ENTRIES(double, f64)
