"""A generated stand-in for the bee-vs-wasp photos: synthetic "insect" pictures.

These are drawings, not photographs. They exist so the exercise runs anywhere
with no download; a model trained on them says nothing about real insects.

Four classes, named as in the real set so code written for one runs on the other:

- ``bee``: a plump oval body, golden-orange to brown, with broad soft dark bands,
  round translucent wings.
- ``other_insect``: no stripes: a ladybird (red shell, black spots), an ant (three
  dark segments), a beetle (one glossy colour, a centre line) or a fly (grey body,
  red eyes, smoky wings).
- ``other_noinsect``: no insect; flowers, leaves and, to make colour alone not
  enough, a striped yellow-and-black object that is not insect-shaped.
- ``wasp``: a slender body with a narrow waist, lemon yellow with sharp black
  bands, long narrow wings.

Every picture has its own background (colour gradient and soft blobs), optional
flowers as distractors, a random position, size and rotation of the subject,
colour jitter that makes bee and wasp colours overlap, and pixel noise. The
class cues therefore sit in shape, proportions and texture together, so a CNN
must learn them (a few epochs take it well above chance but not to 100%).
Generation is vectorised NumPy: thousands of 80x80 images per second.
"""
import numpy as np

from .dataset import IMAGENET_MEAN, IMAGENET_STD, ImageDataset

__all__ = ["SyntheticInsects", "SYNTHETIC_CLASSES"]

SYNTHETIC_CLASSES = ("bee", "other_insect", "other_noinsect", "wasp")
_CHUNK = 32  # images drawn at once: small enough for the temporaries to stay in cache


class SyntheticInsects(ImageDataset):
    """Generated 4-class "insect" pictures (synthetic, not photos), deterministic in ``seed``.

    ``SyntheticInsects(num_images=2000, size=80, seed=0)``: classes are balanced
    (``num_images // 4`` each, the remainder to the first classes) and shuffled.
    Same arguments, same pixels.
    """

    description = "synthetic insects (generated drawings, not photos)"

    def __init__(self, num_images=2000, size=80, seed=0, mean=IMAGENET_MEAN,
                 std=IMAGENET_STD, transform=None):
        if int(num_images) < 1:
            raise ValueError(f"num_images must be >= 1, got {num_images}")
        size = int(size)
        if size < 16:
            raise ValueError(f"size must be at least 16 pixels to draw an insect, got {size}")
        self.seed = int(seed)
        images, labels = generate_insects(int(num_images), size, self.seed)
        super().__init__(images, labels, SYNTHETIC_CLASSES, mean=mean, std=std,
                         transform=transform)

    def __repr__(self):
        return (f"SyntheticInsects({len(self)} images, {self.image_size[0]}x"
                f"{self.image_size[1]}, seed={self.seed}; {self.description})")


def generate_insects(num_images, size, seed):
    """``(images uint8 (N, size, size, 3), labels int64 (N,))``, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    labels = np.arange(num_images) % len(SYNTHETIC_CLASSES)
    labels = rng.permutation(labels).astype(np.int64)
    painters = (
        (_paint_bee,),
        (_paint_ladybird, _paint_ant, _paint_beetle, _paint_fly),
        (_paint_no_insect,),
        (_paint_wasp,),
    )
    kinds = np.zeros(num_images, dtype=np.int64)
    for label, options in enumerate(painters):
        where = labels == label
        kinds[where] = rng.integers(0, len(options), int(where.sum()))
    images = np.empty((num_images, size, size, 3), dtype=np.uint8)
    for label, options in enumerate(painters):
        for kind, painter in enumerate(options):
            where = np.flatnonzero((labels == label) & (kinds == kind))
            for start in range(0, where.size, _CHUNK):
                idx = where[start:start + _CHUNK]
                canvas = _background(rng, idx.size, size)
                _maybe_flowers(rng, canvas, probability=0.5)
                painter(rng, canvas)
                images[idx] = _finish(rng, canvas)
    return images, labels


# ---------------------------------------------------------------------------
# Drawing helpers. A canvas is float32 (B, 3, S, S) in [0, 1] (channels first, so
# NumPy's inner loops run over whole rows); per-image parameters are (B, 1, 1)
# arrays so one expression draws the whole chunk.

def _grid(size):
    coords = np.arange(size, dtype=np.float32) + 0.5
    return coords[None, :, None], coords[None, None, :]  # y (1,S,1), x (1,1,S)


def _col(values):
    return np.asarray(values, dtype=np.float32).reshape(-1, 1, 1)


def _blend(canvas, alpha, colour):
    """canvas = canvas * (1 - alpha) + colour * alpha; colour is (B, 3) or (B, 3, S, S)."""
    colour = np.asarray(colour, dtype=np.float32)
    if colour.ndim == 2:
        colour = colour[:, :, None, None]
    canvas += alpha[:, None] * (colour - canvas)


def _two_tone(light, dark, band):
    """Per-pixel colour (B, 3, S, S): ``dark`` where ``band`` is 1, ``light`` where 0."""
    band = band[:, None]
    return light[:, :, None, None] * (1 - band) + dark[:, :, None, None] * band


def _ellipse(u, v, cu, cv, a, b, soft=1.0):
    """Anti-aliased ellipse mask in body coordinates; ``soft`` widens the edge (pixels)."""
    d = np.sqrt(((u - cu) / a) ** 2 + ((v - cv) / b) ** 2)
    return np.clip(0.5 + (1.0 - d) * np.minimum(a, b) / soft, 0.0, 1.0)


def _segment(u, v, u0, v0, u1, v1, width):
    """Anti-aliased line segment of ``width`` pixels from (u0, v0) to (u1, v1)."""
    du, dv = u1 - u0, v1 - v0
    t = np.clip(((u - u0) * du + (v - v0) * dv) / (du * du + dv * dv + 1e-6), 0.0, 1.0)
    dist = np.sqrt((u - u0 - t * du) ** 2 + (v - v0 - t * dv) ** 2)
    return np.clip(width / 2 + 0.5 - dist, 0.0, 1.0)


def _pose(rng, n, size, scale_range=(0.75, 1.25)):
    """Body coordinates (u along the body, v across), in units of an 80-pixel picture."""
    y, x = _grid(size)
    unit = size / 80.0
    cy = _col(rng.uniform(0.32, 0.68, n) * size)
    cx = _col(rng.uniform(0.32, 0.68, n) * size)
    angle = _col(rng.uniform(0, 2 * np.pi, n))
    scale = _col(rng.uniform(*scale_range, n)) * unit
    dx, dy = x - cx, y - cy
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / scale
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / scale
    return u, v, scale


def _jitter(rng, base, n, spread):
    """``n`` colours around ``base`` (RGB in [0, 1]) with per-channel noise."""
    colours = np.asarray(base, np.float32)[None, :] + rng.normal(0, spread, (n, 3))
    return np.clip(colours, 0.0, 1.0).astype(np.float32)


def _background(rng, n, size):
    y, x = _grid(size)
    palette = np.array([[0.35, 0.55, 0.25], [0.55, 0.70, 0.35], [0.60, 0.75, 0.90],
                        [0.55, 0.45, 0.30], [0.75, 0.72, 0.65], [0.30, 0.40, 0.20],
                        [0.85, 0.80, 0.60], [0.45, 0.50, 0.55]], np.float32)
    first = palette[rng.integers(0, len(palette), n)] + rng.normal(0, 0.06, (n, 3))
    second = palette[rng.integers(0, len(palette), n)] + rng.normal(0, 0.06, (n, 3))
    angle = _col(rng.uniform(0, 2 * np.pi, n))
    ramp = ((x - size / 2) * np.cos(angle) + (y - size / 2) * np.sin(angle)) / size + 0.5
    canvas = _two_tone(first, second, np.clip(ramp, 0, 1))
    canvas = canvas.astype(np.float32)
    for _ in range(3):  # soft out-of-focus blobs
        cy = _col(rng.uniform(0, size, n))
        cx = _col(rng.uniform(0, size, n))
        radius = _col(rng.uniform(0.1, 0.35, n) * size)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius ** 2)).astype(np.float32)
        colour = palette[rng.integers(0, len(palette), n)]
        _blend(canvas, blob * 0.6, colour)
    return canvas


def _flower(rng, canvas, mask_on):
    n, size = canvas.shape[0], canvas.shape[-1]
    u, v, scale = _pose(rng, n, size, (0.5, 1.0))
    # Move the flower off-centre so it rarely hides the subject completely.
    shift = _col(rng.uniform(14, 26, n))
    u = u - shift
    r = np.sqrt(u ** 2 + v ** 2)
    theta = np.arctan2(v, u)
    petals = _col(rng.integers(5, 9, n))
    petal_r = 9 + 4 * np.cos(petals * theta)
    alpha = np.clip(petal_r - r + 0.5, 0, 1) * mask_on
    petal_colour = np.array([[0.95, 0.95, 0.95], [0.85, 0.45, 0.70], [0.60, 0.45, 0.85],
                             [0.95, 0.60, 0.30]], np.float32)
    _blend(canvas, alpha, petal_colour[rng.integers(0, 4, n)] + rng.normal(0, 0.04, (n, 3)))
    centre = np.clip(4.0 - r + 0.5, 0, 1) * mask_on
    _blend(canvas, centre, _jitter(rng, (0.95, 0.80, 0.15), n, 0.05))


def _maybe_flowers(rng, canvas, probability):
    on = _col(rng.random(canvas.shape[0]) < probability)
    _flower(rng, canvas, on)


def _legs(canvas, u, v, scale, colour, length=11.0, attach=(2.0, 5.0, 8.0)):
    """Six legs from the thorax, swept backwards, as thin dark segments."""
    width = np.maximum(1.0 / scale, 1.0)  # at least one pixel wide in the picture
    alpha = np.zeros(u.shape, np.float32)
    for side in (-1.0, 1.0):
        for k, at in enumerate(attach):
            sweep = (k - 1) * 5.0
            alpha = np.maximum(alpha, _segment(u, v, at, 0.0, at - 6 + sweep,
                                               side * length, width))
    _blend(canvas, alpha, colour)


def _stripes(u, period, phase, duty, sharpness):
    """1 inside dark bands across the body axis; ``sharpness`` sets how hard the edges are."""
    wave = np.cos(2 * np.pi * u / period + phase)
    return np.clip(0.5 + (wave - (1 - 2 * duty)) * sharpness, 0.0, 1.0)


def _wings(canvas, u, v, rng, centre_u, length, width, spread, colour, opacity):
    n = canvas.shape[0]
    for side in (-1.0, 1.0):
        angle = side * spread
        wu = (u - centre_u) * np.cos(angle) + (v - side * width) * np.sin(angle)
        wv = -(u - centre_u) * np.sin(angle) + (v - side * width) * np.cos(angle)
        alpha = _ellipse(wu, wv, -length * 0.55, 0.0, length, width, soft=1.5) * opacity
        _blend(canvas, alpha.astype(np.float32), _jitter(rng, colour, n, 0.04))


def _paint_bee(rng, canvas):
    n = canvas.shape[0]
    u, v, scale = _pose(rng, n, canvas.shape[-1])
    dark = _jitter(rng, (0.18, 0.12, 0.06), n, 0.04)
    _legs(canvas, u, v, scale, dark)
    # Plump abdomen: long axis 12-15, half-width 8-10.
    a = _col(rng.uniform(12, 15, n))
    b = _col(rng.uniform(8, 10, n))
    body = _ellipse(u, v, -a * 0.55, 0.0, a, b, soft=1.8)  # fuzzy edge
    golden = _jitter(rng, (0.88, 0.62, 0.18), n, 0.08)
    band = _stripes(u, _col(rng.uniform(6.5, 8.5, n)), _col(rng.uniform(0, 6.3, n)),
                    duty=0.45, sharpness=1.5)
    colour = _two_tone(golden, dark, band)
    _blend(canvas, body, colour)
    _blend(canvas, _ellipse(u, v, 4.0, 0.0, 6.0, 6.0, soft=1.8), _jitter(rng, (0.45, 0.30, 0.12), n, 0.06))
    _blend(canvas, _ellipse(u, v, 10.5, 0.0, 4.0, 4.5), dark)
    _wings(canvas, u, v, rng, 3.0, 10.0, 5.5, 0.5, (0.92, 0.94, 0.96), 0.45)


def _paint_wasp(rng, canvas):
    n = canvas.shape[0]
    u, v, scale = _pose(rng, n, canvas.shape[-1])
    black = _jitter(rng, (0.06, 0.05, 0.04), n, 0.03)
    _legs(canvas, u, v, scale, _jitter(rng, (0.75, 0.60, 0.10), n, 0.06), length=12.0)
    # Slender abdomen separated from the thorax by a narrow waist.
    a = _col(rng.uniform(13, 16, n))
    b = _col(rng.uniform(5.0, 6.5, n))
    body = _ellipse(u, v, -a - 1.0, 0.0, a, b, soft=0.7)
    yellow = _jitter(rng, (0.96, 0.84, 0.10), n, 0.08)
    band = _stripes(u, _col(rng.uniform(5.0, 6.5, n)), _col(rng.uniform(0, 6.3, n)),
                    duty=0.4, sharpness=4.0)
    colour = _two_tone(yellow, black, band)
    _blend(canvas, body, colour)
    _blend(canvas, _segment(u, v, -1.5, 0.0, 1.5, 0.0, 1.5), black)  # the waist
    _blend(canvas, _ellipse(u, v, 5.0, 0.0, 5.0, 3.8, soft=0.7), black)
    _blend(canvas, _ellipse(u, v, 11.5, 0.0, 3.5, 4.0, soft=0.7), yellow)
    _wings(canvas, u, v, rng, 4.0, 14.0, 3.0, 0.25, (0.55, 0.50, 0.40), 0.40)


def _insect_pose(rng, canvas):
    """Pose of one insect per picture, with its six dark legs already drawn."""
    n = canvas.shape[0]
    u, v, scale = _pose(rng, n, canvas.shape[-1])
    dark = _jitter(rng, (0.10, 0.08, 0.07), n, 0.04)
    _legs(canvas, u, v, scale, dark)
    return u, v, dark


def _paint_ladybird(rng, canvas):
    """A round red (or orange) shell with black spots."""
    u, v, dark = _insect_pose(rng, canvas)
    n = canvas.shape[0]
    shell = _ellipse(u, v, -2.0, 0.0, 11.0, 10.0)
    _blend(canvas, shell, _jitter(rng, (0.85, 0.15, 0.10), n, 0.08))
    spots = np.zeros(u.shape, np.float32)
    for su, sv in ((-6, 4), (-6, -4), (1, 5.5), (1, -5.5), (-9, 0), (4, 0)):
        spots = np.maximum(spots, _ellipse(u, v, su, sv, 2.2, 2.2))
    _blend(canvas, spots * shell, dark)
    _blend(canvas, _ellipse(u, v, 9.5, 0.0, 3.5, 5.0), dark)


def _paint_ant(rng, canvas):
    """Gaster, thorax and head in a row, dark red-brown to black."""
    u, v, _ = _insect_pose(rng, canvas)
    ant = _jitter(rng, (0.25, 0.10, 0.06), canvas.shape[0], 0.08)
    for cu, a, b in ((-9.0, 7.0, 5.0), (1.0, 4.5, 2.8), (8.5, 3.5, 3.5)):
        _blend(canvas, _ellipse(u, v, cu, 0.0, a, b, soft=0.7), ant)


def _paint_beetle(rng, canvas):
    """One glossy colour with a dark line down the wing cases."""
    u, v, dark = _insect_pose(rng, canvas)
    n = canvas.shape[0]
    beetle = np.array([[0.15, 0.45, 0.20], [0.15, 0.25, 0.55], [0.40, 0.22, 0.10],
                       [0.55, 0.50, 0.10]], np.float32)[rng.integers(0, 4, n)]
    beetle = np.clip(beetle + rng.normal(0, 0.05, (n, 3)), 0, 1)
    case = _ellipse(u, v, -3.0, 0.0, 13.0, 8.0, soft=0.7)
    _blend(canvas, case, beetle)
    _blend(canvas, _segment(u, v, -15.0, 0.0, 8.0, 0.0, 1.0) * case, dark)
    _blend(canvas, _ellipse(u, v, 12.0, 0.0, 3.0, 4.0), dark)
    _blend(canvas, _ellipse(u, v, -6.0, 3.0, 3.0, 1.5, soft=2.0) * 0.5,
           np.ones((n, 3), np.float32))


def _paint_fly(rng, canvas):
    """Grey body, big red eyes, smoky wings."""
    u, v, _ = _insect_pose(rng, canvas)
    n = canvas.shape[0]
    _wings(canvas, u, v, rng, 0.0, 12.0, 5.0, 0.6, (0.60, 0.62, 0.65), 0.45)
    _blend(canvas, _ellipse(u, v, -5.0, 0.0, 9.0, 6.0, soft=1.0),
           _jitter(rng, (0.40, 0.40, 0.40), n, 0.06))
    for side in (-1, 1):
        _blend(canvas, _ellipse(u, v, 7.0, side * 3.0, 3.0, 3.0),
               _jitter(rng, (0.70, 0.10, 0.08), n, 0.05))


def _paint_no_insect(rng, canvas):
    n, size = canvas.shape[0], canvas.shape[-1]
    _maybe_flowers(rng, canvas, probability=0.8)
    # Leaves: long green ellipses with a midrib.
    u, v, _ = _pose(rng, n, size, (0.8, 1.4))
    leaf_on = _col(rng.random(n) < 0.6).astype(np.float32)
    leaf = _ellipse(u, v, 0.0, 0.0, 16.0, 6.0) * leaf_on
    _blend(canvas, leaf, _jitter(rng, (0.25, 0.55, 0.20), n, 0.07))
    _blend(canvas, _segment(u, v, -15.0, 0.0, 15.0, 0.0, 1.0) * leaf, _jitter(rng, (0.5, 0.7, 0.35), n, 0.05))
    # A striped yellow-and-black object (a sign, a tape) so stripes alone do not mean wasp.
    u, v, _ = _pose(rng, n, size, (0.8, 1.3))
    sign_on = _col(rng.random(n) < 0.4).astype(np.float32)
    half_u, half_v = _col(rng.uniform(8, 16, n)), _col(rng.uniform(6, 12, n))
    rect = (np.clip(half_u + 0.5 - np.abs(u), 0, 1) * np.clip(half_v + 0.5 - np.abs(v), 0, 1)
            * sign_on)
    band = _stripes(u + v, _col(rng.uniform(5, 9, n)), 0.0, duty=0.5, sharpness=4.0)
    yellow = _jitter(rng, (0.95, 0.82, 0.12), n, 0.08)
    black = _jitter(rng, (0.08, 0.08, 0.08), n, 0.03)
    colour = _two_tone(yellow, black, band)
    _blend(canvas, rect, colour)
    # A pebble or a berry: a plain round blob.
    u, v, _ = _pose(rng, n, size, (0.6, 1.2))
    blob_on = _col(rng.random(n) < 0.5).astype(np.float32)
    _blend(canvas, _ellipse(u, v, 0.0, 0.0, 7.0, 6.0) * blob_on,
           _jitter(rng, (0.50, 0.40, 0.35), n, 0.15))


def _finish(rng, canvas):
    """Lighting, contrast and noise; then quantise to uint8."""
    n = canvas.shape[0]
    gain = rng.uniform(0.8, 1.2, (n, 1, 1, 1)).astype(np.float32)
    offset = rng.uniform(-0.08, 0.08, (n, 1, 1, 1)).astype(np.float32)
    sigma = rng.uniform(0.02, 0.07, (n, 1, 1, 1)).astype(np.float32)
    canvas *= gain
    canvas += offset
    # Uniform noise with the same standard deviation: six times cheaper than normal.
    canvas += (rng.random(canvas.shape, dtype=np.float32) - 0.5) * (sigma * np.float32(12 ** 0.5))
    np.clip(canvas, 0.0, 1.0, out=canvas)
    canvas *= 255.0
    canvas += 0.5
    return canvas.astype(np.uint8).transpose(0, 2, 3, 1)
