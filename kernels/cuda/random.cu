// Dropout masks from a counter-based hash: element i of a mask drawn at stream
// position `offset` gets the 64 random bits
//     bits = mix64(mix64(seed) + (offset + i) * GOLDEN)        (all mod 2^64)
// where mix64 is the splitmix64 finaliser. No generator state lives on the device,
// so the mask depends only on (seed, offset + i): kernels.reference.random computes
// the same bits in NumPy, and a captured CUDA graph can replay it. An element is
// kept when the top 32 bits are >= threshold = round(p * 2^32) (computed once on the
// host by kernels.reference.random.drop_threshold), so keep and drop are decided in
// integers, identically on both devices.

#define GOLDEN_GAMMA 0x9E3779B97F4A7C15ULL

__device__ __forceinline__ u64 mix64(u64 z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

// The stream position is offset_host, plus *offset_ptr when offset_on_device is set,
// so a captured graph can advance a base position on the device between replays
// while each mask of the step keeps its own distance from that base.
template <typename T>
__device__ __forceinline__ void dropout_mask_body(
    T* __restrict__ mask, i64 n, u64 seed, const u64* offset_ptr, int offset_on_device,
    u64 offset_host, u64 threshold, double keep_scale) {
    const u64 key = mix64(seed);
    const u64 offset = offset_host + (offset_on_device ? *offset_ptr : 0ULL);
    const T scale = (T)keep_scale;
    FOR_ELEMENTS(i, n) {
        const u64 bits = mix64(key + (offset + (u64)i) * GOLDEN_GAMMA);
        mask[i] = ((bits >> 32) >= threshold) ? scale : T(0);
    }
}

#define RANDOM_ENTRIES(T, SUFFIX)                                                        \
    extern "C" __global__ void dropout_mask_##SUFFIX(                                     \
        T* mask, i64 n, u64 seed, const u64* offset_ptr, int offset_on_device,            \
        u64 offset_host, u64 threshold, double keep_scale) {                             \
        dropout_mask_body<T>(mask, n, seed, offset_ptr, offset_on_device, offset_host,    \
                             threshold, keep_scale);                                     \
    }

RANDOM_ENTRIES(float, f32)
RANDOM_ENTRIES(double, f64)
