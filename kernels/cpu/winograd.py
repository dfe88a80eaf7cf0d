"""Winograd F(2x2, 3x3) convolution on the CPU: 3x3 kernels, stride 1, any padding.

Each 2x2 block of outputs ("tile") of one output channel is computed from the 4x4
input patch under it as ``A^T [sum_c (G g G^T) * (B^T d B)] A`` (Lavin and Gray,
2015): 16 multiplications per channel pair instead of 36, the sum over input
channels done as 16 GEMMs (one per position ``xi`` of the 4x4 transformed tile):

    forward      M[xi] = U[xi] @ V[xi]        U = G w G^T: (16, O, C); V: (16, C, tiles)
    weight grad  dU[xi] = dM[xi] @ V[xi].T    dM = A gy A^T: (16, O, tiles)
    input grad   dV[xi] = U[xi].T @ dM[xi],   then gx = B dV B^T, scattered back

The backward is the exact adjoint of the forward (each transform's transpose), so it
is the gradient of the computed function, and the transformed input V, kept from
the forward in place of im2col's columns (16/4 = 4 values per input element rather
than 9), serves the weight gradient: no transform is redone. B, G and A hold only
0, +-1 and +-1/2, so the float32 error stays at im2col's order (figures against
float64 in benchmarks/README.md).

The transforms are Numba loops that run along image rows (contiguous, vectorised);
the batch goes through transform -> GEMMs -> transform in slices whose transformed
tiles take about ``CHUNK_BYTES``, so each GEMM reads what the transform just wrote
from the cache. Tiles of one slice are stored together, so every slice of V is one
contiguous (16, C, tiles) block.
"""
from typing import NamedTuple, Optional

import numpy as np
from numba import prange

from ._buffers import POOL
from ._jit import cpu_kernel
from ._threads import batch_slices, run_slices
from .activation import forward_into

# Bytes of transformed tiles (V and M, or dM and dV) per batch slice; see conv.py's
# CHUNK_BYTES for why slices (the value here measured on the exercise's layers).
CHUNK_BYTES = 4 << 20

# Activation codes the kernels apply themselves (tanh/sigmoid forward go through
# NumPy's SIMD ufuncs in activation.forward_into instead).
ACTIVATION_CODES = {None: 0, "relu": 1, "tanh": 2, "sigmoid": 3}

# G (4x3), the weight transform; B^T and A^T are written out in the kernels.
_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
# (G w G^T)[k, l] = sum_ij G[k, i] G[l, j] w[i, j] = (kron(G, G) @ w.ravel())[4k + l],
# kept in both float widths (a cast per call cost a tenth of a batch-1 convolution).
_KRON_G = {np.dtype(t): np.kron(_G, _G).astype(t) for t in (np.float32, np.float64)}


def tiles(oh, ow):
    """Tile rows and columns covering an oh x ow output (the last ones may overhang)."""
    return (oh + 1) // 2, (ow + 1) // 2


# The transforms loop over an image's tiles as one flat run of th*tw (V's layout):
# tile rows are only 10-40 long here, too short for vectors. Each kernel first
# sorts a plane into small scratch planes by row and column parity, so that the 4x4
# patch of tile f is even[f], odd[f], even[f + tw], ...: constant offsets, unit
# stride. They index arrays in full rather than through row views, and allocate
# their scratch once per image: a view or an allocation costs Numba reference-count
# or allocator calls inside these loops (benchmarks/README.md, "Design
# measurements": winograd-views). Parallel builds split the work by image.


@cpu_kernel
def _input_transform(x, ph, pw, th, tw, v):
    """v[xi, c, b*th*tw + ty*tw + tx] = (B^T d B)[xi] for the 4x4 patch d of the
    zero-padded x at rows 2ty.., columns 2tx.. (x: this slice's images)."""
    n_img, n_ch, h, w = x.shape
    hp, wp = 2 * th + 2, 2 * tw + 2
    size = th * tw
    for b in prange(n_img):
        padded = np.zeros(wp, x.dtype)
        # B over columns 2tx..2tx+3 of each padded row r: cols[r % 2, l, (r // 2) * tw + tx]
        cols = np.empty((2, 4, (th + 1) * tw), x.dtype)
        base = b * size
        for c in range(n_ch):
            for r in range(hp):
                i = r - ph
                if 0 <= i < h:
                    for j in range(w):
                        padded[pw + j] = x[b, c, i, j]
                else:
                    for j in range(w):
                        padded[pw + j] = 0
                par = r % 2
                at = (r // 2) * tw
                for tx in range(tw):
                    a0 = padded[2 * tx]
                    a1 = padded[2 * tx + 1]
                    a2 = padded[2 * tx + 2]
                    a3 = padded[2 * tx + 3]
                    cols[par, 0, at + tx] = a0 - a2
                    cols[par, 1, at + tx] = a1 + a2
                    cols[par, 2, at + tx] = a2 - a1
                    cols[par, 3, at + tx] = a1 - a3
            for l in range(4):  # B^T over rows 2ty..2ty+3: even[f], odd[f], even[f+tw], odd[f+tw]
                for f in range(size):
                    d0 = cols[0, l, f]
                    d1 = cols[1, l, f]
                    d2 = cols[0, l, f + tw]
                    d3 = cols[1, l, f + tw]
                    v[l, c, base + f] = d0 - d2
                    v[4 + l, c, base + f] = d1 + d2
                    v[8 + l, c, base + f] = d2 - d1
                    v[12 + l, c, base + f] = d1 - d3


@cpu_kernel
def _output_transform(m, bias, relu, th, tw, y):
    """y[b, o, 2ty + i, 2tx + j] = (A^T M A)[i, j] + bias[o] (then ReLU if ``relu``),
    for the slice's images; an overhanging tile row or column is not written.
    ``bias`` has one value per output channel (zeros when the layer has none)."""
    n_img, n_out, oh, ow = y.shape
    size = th * tw
    full_w = ow // 2
    zero = y.dtype.type(0)
    for b in prange(n_img):
        s = np.empty((2, 4, size), y.dtype)
        out = np.empty((2, 2, size), y.dtype)  # [row i, column j] of every tile
        base = b * size
        for o in range(n_out):
            bo = bias[o]
            for l in range(4):  # A^T over the tile's rows
                for f in range(size):
                    m0 = m[l, o, base + f]
                    m1 = m[4 + l, o, base + f]
                    m2 = m[8 + l, o, base + f]
                    m3 = m[12 + l, o, base + f]
                    s[0, l, f] = m0 + m1 + m2
                    s[1, l, f] = m1 - m2 - m3
            for i in range(2):  # A over the tile's columns, the bias, the ReLU
                for f in range(size):
                    out[i, 0, f] = s[i, 0, f] + s[i, 1, f] + s[i, 2, f] + bo
                    out[i, 1, f] = s[i, 1, f] - s[i, 2, f] - s[i, 3, f] + bo
                if relu:  # NaN compares false and is kept, as in _relu
                    for j in range(2):
                        for f in range(size):
                            t = out[i, j, f]
                            out[i, j, f] = zero if t <= 0 else t
            for oy in range(oh):
                i = oy % 2
                at = (oy // 2) * tw
                for tx in range(full_w):
                    y[b, o, oy, 2 * tx] = out[i, 0, at + tx]
                    y[b, o, oy, 2 * tx + 1] = out[i, 1, at + tx]
                if full_w < tw:  # odd width: the last tile's left column only
                    y[b, o, oy, 2 * full_w] = out[i, 0, at + full_w]


@cpu_kernel
def _grad_output_transform(gy, y, act, th, tw, dm, gb):
    """dm[xi, o, tile] = (A g A^T)[xi] for each 2x2 block g of the pre-activation
    gradient (zero past an odd edge), and gb[b, o] = the sum of that gradient.

    ``act`` (ACTIVATION_CODES) turns gy into the pre-activation gradient on the way,
    taken from the output y as ``activation.backward_into`` does.
    """
    n_img, n_out, oh, ow = gy.shape
    size = th * tw
    one = gy.dtype.type(1)
    for b in prange(n_img):
        g = np.zeros((2, 2, size), gy.dtype)  # [row i, column j] of every block
        row = np.zeros(2 * tw, gy.dtype)  # row[2tw - 1] stays 0 for an odd width
        base = b * size
        for o in range(n_out):
            total = 0.0
            for i in range(oh):
                if act == 0:
                    for j in range(ow):
                        row[j] = gy[b, o, i, j]
                elif act == 1:
                    for j in range(ow):
                        row[j] = gy[b, o, i, j] if y[b, o, i, j] > 0 else 0
                elif act == 2:
                    for j in range(ow):
                        t = y[b, o, i, j]
                        row[j] = gy[b, o, i, j] * (one - t * t)
                else:
                    for j in range(ow):
                        t = y[b, o, i, j]
                        row[j] = gy[b, o, i, j] * t * (one - t)
                part = row.dtype.type(0)
                for j in range(ow):
                    part += row[j]
                total += part
                par = i % 2
                at = (i // 2) * tw
                for tx in range(tw):
                    g[par, 0, at + tx] = row[2 * tx]
                    g[par, 1, at + tx] = row[2 * tx + 1]
            if oh % 2:  # the overhanging block row is zero
                for j in range(2):
                    for f in range(size - tw, size):
                        g[1, j, f] = 0
            gb[b, o] = total
            # A over the rows (g0, g0 + g1, g0 - g1, -g1), then over the columns
            for f in range(size):
                a0 = g[0, 0, f]
                a1 = g[0, 1, f]
                dm[0, o, base + f] = a0
                dm[1, o, base + f] = a0 + a1
                dm[2, o, base + f] = a0 - a1
                dm[3, o, base + f] = -a1
            for f in range(size):
                a0 = g[0, 0, f] + g[1, 0, f]
                a1 = g[0, 1, f] + g[1, 1, f]
                dm[4, o, base + f] = a0
                dm[5, o, base + f] = a0 + a1
                dm[6, o, base + f] = a0 - a1
                dm[7, o, base + f] = -a1
            for f in range(size):
                a0 = g[0, 0, f] - g[1, 0, f]
                a1 = g[0, 1, f] - g[1, 1, f]
                dm[8, o, base + f] = a0
                dm[9, o, base + f] = a0 + a1
                dm[10, o, base + f] = a0 - a1
                dm[11, o, base + f] = -a1
            for f in range(size):
                a0 = -g[1, 0, f]
                a1 = -g[1, 1, f]
                dm[12, o, base + f] = a0
                dm[13, o, base + f] = a0 + a1
                dm[14, o, base + f] = a0 - a1
                dm[15, o, base + f] = -a1


@cpu_kernel
def _grad_input_transform(dv, ph, pw, th, tw, gx):
    """gx[b, c] = the adjoint of _input_transform: B dV B^T of every tile (its 4x4
    contribution D) added into the padded plane, the padding dropped.

    Tiles overlap by two rows and columns, so padded pixel (2a + p, 2q + r) is
    D[p, r] of tile (a, q) + D[p + 2, r] of (a - 1, q) + D[p, r + 2] of (a, q - 1)
    + D[p + 2, r + 2] of (a - 1, q - 1): gathered, with no read-modify-write, into a
    row's even and odd columns (unit stride), then interleaved into gx.
    """
    n_img, n_ch, h, w = gx.shape
    size = th * tw
    for b in prange(n_img):
        e = np.empty((4, 4, size), gx.dtype)  # [k, column j]: B over the columns
        d = np.empty((4, 4, size), gx.dtype)  # [row i, column j]: B over the rows
        cols = np.empty((2, tw + 1), gx.dtype)  # a plane row's even and odd columns
        base = b * size
        for c in range(n_ch):
            for k in range(4):
                for f in range(size):
                    v0 = dv[4 * k, c, base + f]
                    v1 = dv[4 * k + 1, c, base + f]
                    v2 = dv[4 * k + 2, c, base + f]
                    v3 = dv[4 * k + 3, c, base + f]
                    e[k, 0, f] = v0
                    e[k, 1, f] = v1 - v2 + v3
                    e[k, 2, f] = -v0 + v1 + v2
                    e[k, 3, f] = -v3
            for j in range(4):
                for f in range(size):
                    k0 = e[0, j, f]
                    k1 = e[1, j, f]
                    k2 = e[2, j, f]
                    k3 = e[3, j, f]
                    d[0, j, f] = k0
                    d[1, j, f] = k1 - k2 + k3
                    d[2, j, f] = -k0 + k1 + k2
                    d[3, j, f] = -k3
            for i in range(h):
                pr = i + ph
                a, p = pr // 2, pr % 2
                here = a * tw  # tile row a's first tile; tile row a - 1 is here - tw
                for r in range(2):  # the plane's even (r = 0) and odd columns
                    if a < th and a > 0:
                        cols[r, 0] = d[p, r, here] + d[p + 2, r, here - tw]
                        for q in range(1, tw):
                            cols[r, q] = (d[p, r, here + q] + d[p, r + 2, here + q - 1]
                                          + d[p + 2, r, here - tw + q]
                                          + d[p + 2, r + 2, here - tw + q - 1])
                        cols[r, tw] = (d[p, r + 2, here + tw - 1]
                                       + d[p + 2, r + 2, here - 1])
                    elif a < th:  # the first tile row: no tile above
                        cols[r, 0] = d[p, r, here]
                        for q in range(1, tw):
                            cols[r, q] = d[p, r, here + q] + d[p, r + 2, here + q - 1]
                        cols[r, tw] = d[p, r + 2, here + tw - 1]
                    else:  # below the last tile row: only the tiles above
                        cols[r, 0] = d[p + 2, r, here - tw]
                        for q in range(1, tw):
                            cols[r, q] = (d[p + 2, r, here - tw + q]
                                          + d[p + 2, r + 2, here - tw + q - 1])
                        cols[r, tw] = d[p + 2, r + 2, here - 1]
                # The interleave: plane column 2q + r is gx column 2q + r - pw.
                for q in range(max(0, (pw - 1) // 2), min(tw + 1, (w + pw + 1) // 2)):
                    j = 2 * q - pw
                    if j >= 0:
                        gx[b, c, i, j] = cols[0, q]
                    if 0 <= j + 1 < w:
                        gx[b, c, i, j + 1] = cols[1, q]


def weight_transform(w):
    """U[4k + l, o, c] = (G w[o, c] G^T)[k, l], in w's dtype: one small GEMM with
    kron(G, G) (np.einsum's path search alone cost more than this)."""
    out_ch, c = w.shape[:2]
    u = _KRON_G[w.dtype] @ w.reshape(out_ch * c, 9).T  # (16, O*C)
    return u.reshape(16, out_ch, c)


def weight_transform_adjoint(du):
    """gw[o, c] = G^T dU[o, c] G: the adjoint of ``weight_transform``."""
    out_ch, c = du.shape[1:]
    gw = du.reshape(16, out_ch * c).T @ _KRON_G[du.dtype]  # (O*C, 9)
    return gw.reshape(out_ch, c, 3, 3)


class WinogradCache(NamedTuple):
    """What backward needs: the transformed input V (slice by slice), U, geometry,
    and for a fused activation its name and the activated output."""
    v: np.ndarray
    u: np.ndarray
    x_shape: tuple
    w_shape: tuple
    has_bias: bool
    padding: tuple
    activation: Optional[str]
    y: Optional[np.ndarray]


def _slices(n, bytes_per_image):
    """(start, stop) slices of the batch with about CHUNK_BYTES of tiles each."""
    return batch_slices(n, bytes_per_image, CHUNK_BYTES)


def _block(flat, per_tile_rows, lo, hi, per_image):
    """Slice [lo, hi)'s contiguous (16, rows, tiles) block of a flat V-like buffer."""
    start, stop = 16 * per_tile_rows * lo * per_image, 16 * per_tile_rows * hi * per_image
    return flat[start:stop].reshape(16, per_tile_rows, (hi - lo) * per_image)


def conv2d_forward(x, w, b, padding, activation, dtype):
    """act(conv2d(x, w, stride 1) + b) for 3x3 ``w``; x, w contiguous of ``dtype``."""
    n, c, h, wd = x.shape
    out_ch = w.shape[0]
    ph, pw = padding
    oh, ow = h + 2 * ph - 2, wd + 2 * pw - 2
    th, tw = tiles(oh, ow)
    per_image = th * tw
    u = weight_transform(w)
    bias = np.zeros(out_ch, dtype) if b is None else np.asarray(b).astype(dtype)
    v = POOL.empty("wino.v", (16 * c * n * per_image,), dtype)
    y = POOL.empty("conv.y", (n, out_ch, oh, ow), dtype)
    slices = _slices(n, 16 * (c + out_ch) * per_image * np.dtype(dtype).itemsize)
    most = slices[0][1] if slices else 0
    fused = activation in ("tanh", "sigmoid")  # through NumPy's ufuncs, below

    def work(lo, hi):
        vb = _block(v, c, lo, hi, per_image)
        _input_transform(x[lo:hi], ph, pw, th, tw, vb)
        m_flat = POOL.empty("wino.m", (16 * out_ch * most * per_image,), dtype)
        mb = _block(m_flat, out_ch, 0, hi - lo, per_image)
        np.matmul(u, vb, out=mb)  # the GEMM reads what the transform just wrote
        if fused:
            pre = POOL.empty("conv.pre", (most, out_ch, oh, ow), dtype)
            _output_transform(mb, bias, False, th, tw, pre[:hi - lo])
            forward_into(activation, pre[:hi - lo].reshape(-1), y[lo:hi].reshape(-1))
        else:
            _output_transform(mb, bias, activation == "relu", th, tw, y[lo:hi])
    run_slices(work, slices)
    cache = WinogradCache(v, u, x.shape, w.shape, b is not None, (ph, pw), activation,
                          None if activation is None else y)
    return y, cache


def conv2d_backward(gy, cache, need_input_grad):
    """(gx or None, gw, gb or None) of ``conv2d_forward`` from its cache."""
    v, u, x_shape, w_shape, has_bias, (ph, pw), activation, y = cache
    dtype = v.dtype
    n, out_ch, oh, ow = gy.shape
    c = x_shape[1]
    gy = np.ascontiguousarray(gy, dtype=dtype)
    th, tw = tiles(oh, ow)
    per_image = th * tw
    act = ACTIVATION_CODES[activation]
    y_arg = gy if y is None else y  # not read without an activation
    slices = _slices(n, 16 * (c + out_ch) * per_image * dtype.itemsize)
    most = slices[0][1] if slices else 0
    du_parts = np.empty((len(slices), 16, out_ch, c), dtype)
    gb_parts = np.empty((n, out_ch), np.float64)
    gx = POOL.empty("conv.gx", x_shape, dtype) if need_input_grad else None
    u_t = u.transpose(0, 2, 1)
    first = {lo: s for s, (lo, _) in enumerate(slices)}

    def work(lo, hi):
        dm_flat = POOL.empty("wino.dm", (16 * out_ch * most * per_image,), dtype)
        dmb = _block(dm_flat, out_ch, 0, hi - lo, per_image)
        _grad_output_transform(gy[lo:hi], y_arg[lo:hi], act, th, tw, dmb, gb_parts[lo:hi])
        vb = _block(v, c, lo, hi, per_image)
        np.matmul(dmb, vb.transpose(0, 2, 1), out=du_parts[first[lo]])
        if need_input_grad:  # the input-gradient transform reads dV from the cache
            dv_flat = POOL.empty("wino.dv", (16 * c * most * per_image,), dtype)
            dvb = _block(dv_flat, c, 0, hi - lo, per_image)
            np.matmul(u_t, dmb, out=dvb)
            _grad_input_transform(dvb, ph, pw, th, tw, gx[lo:hi])
    run_slices(work, slices)
    du = du_parts.sum(axis=0) if slices else np.zeros((16, out_ch, c), dtype)
    gw = weight_transform_adjoint(du).astype(dtype, copy=False)
    gb = gb_parts.sum(axis=0).astype(dtype) if has_bias else None
    return gx, gw, gb
