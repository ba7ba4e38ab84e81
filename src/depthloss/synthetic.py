"""Procedural depth scenes: deterministic images, dense metric depth and LiDAR-like sparse depth.

The scenes are small, fast and fully analytic, made for unit tests, benchmarks and the
training demo: every pixel's depth is known exactly, so a loss or a network can be checked
against ground truth without downloading a dataset.

Scene model
-----------
The scenes are built so that depth can be *learned from the image* by a small network, from
the cues real photographs carry (never from depth painted into the colours):

- **Camera.** A pinhole camera with square pixels, focal length ``f = 0.58 · max(H, W)``
  pixels (KITTI's ratio: a 96×320 image sees about 81° horizontally and 29° vertically)
  and the principal point at the image centre, ``c = ((W − 1) / 2, (H − 1) / 2)``
  (OpenCV convention: pixel ``(u, v)`` has its centre at integer coordinates). The camera
  is mounted like a car's: 1.5-1.7 m above the ground, pitched 0.5-2.5° down and rolled
  ±1°, so the image row of a ground point tells its distance (*ground-plane perspective*).
- **Ground.** An infinite plane textured with a checkerboard of a known size (cells
  0.9-1.1 m, random orientation and colours) in world coordinates, so its apparent
  frequency grows with distance; the checker fades to its mean colour where a pixel covers
  more than a cell (what a mip-mapped texture does): a *texture-gradient* cue.
- **Objects.** Up to 5 boxes (half sizes 0.3-1.5 × 0.4-1.2 × 0.3-1.5 m, random yaw and
  colour; at least one) and up to 4 spheres (radius 0.3-1 m) resting on the ground. Their
  nearest point is log-uniform (every octave of distance equally populated) between
  ``1.15 ×`` the nearest ground the camera sees (at least 2.5 m) and
  ``max(3, 0.6 · max_depth)`` m, so the row where an object touches the ground is in view
  (*height in the image*), spread across 90 % of the horizontal field of view. Objects
  carry a solid checker of 0.5 m cells (*texture density*, faded like the ground's) and
  hide what is behind them (*occlusion*). With probability ``near_prob`` a *near-field*
  object takes the place of the first box: a post of a known size (15 cm square, facing the
  camera within ±5°, from the ground to above the camera, with a 4 cm checker) whose
  closest point is ``near_range`` (default 0.3-1.0 m) from the camera, in the middle half of
  the view: its apparent width and texture density tell its distance (*known size*).
  Objects may overlap; the scene is their union.
- **Appearance.** Lambertian shading from a random sun direction (elevation 20-65°) with
  cast shadows from the objects, a hemispherical ambient term, distinct per-object
  albedos, exponential fog towards a per-scene haze colour (visibility 50-100 m, so far
  surfaces fade into the haze: *aerial perspective*), a sky gradient from the haze colour
  at the horizon to blue at the zenith, and Gaussian sensor noise (σ = 0.01). The image is
  clamped to [0, 1].
- **Depth.** Metric (metres) z-depth along the optical axis, not ray length, computed by
  exact ray casting (ray-plane, ray-sphere and ray-box slab tests for all pixels and
  objects at once). A pixel is *valid* where its ray hits a surface no farther than
  ``max_depth``. Sky, and surfaces beyond ``max_depth`` (which the image still shows,
  fogged), have no depth: ``depth = 0`` and ``valid = False``, the same "no return"
  convention as sparse ground truth, so losses can use ``mask = valid`` or ``depth > 0``.
  No surface is ever closer than ``near_range[0]``: other objects stay beyond about
  2.4 m and the ground beyond about 1.6 m, which is why ``near_range`` ends by 1.25 m.
- **LiDAR.** A scanner samples beams that run across the image along nearly horizontal
  lines, one every ``k`` rows (each with a small random offset and bow, so they do not
  fall exactly on pixel rows), with random per-point dropout. ``k`` and the keep rate are
  chosen so that, in expectation, exactly ``lidar_fraction`` of the valid pixels carry a
  return. Where a beam meets a valid pixel the sparse depth equals the dense depth
  exactly (no noise); elsewhere it is 0. The default 0.15 gives about 7-15 % of all
  pixels (the rest of the image is sky or beyond range).

Speed
-----
Rays are cast analytically and vectorized over all scenes of a chunk: each object is
tested only on the pixels of its conservative screen-space bounding rectangle (and, for
shadows, of the rectangle of the volume it can shade), enumerated as flat (pixel, object)
pairs; the nearest hit per pixel is a ``scatter_reduce``. There is no Python loop over
pixels or objects. On the CPU one core renders about 100 scenes of 96×320 per second.
Rendering runs on one thread (see :func:`make_scenes`).

Determinism
-----------
Scene ``i`` of ``make_scenes(n, seed=s, offset=o)`` is drawn from its own
``torch.Generator`` seeded from ``(s, o + i)`` (through :class:`numpy.random.SeedSequence`);
the global RNG is never touched. The same arguments give bit-identical tensors, a scene
does not depend on the batch it is generated in (``make_scenes(4)`` starts with
``make_scenes(2)``), and the LiDAR pattern has its own stream, so changing
``lidar_fraction`` leaves image and depth unchanged. Random draws happen on the CPU, so a
scene is the same on every device up to floating-point rounding of the renderer.

Example:
    >>> import depthloss.synthetic as syn
    >>> batch = syn.make_scenes(4, height=96, width=320, seed=0)
    >>> tuple(batch.image.shape), tuple(batch.depth.shape), batch.sparse_valid.dtype
    ((4, 3, 96, 320), (4, 1, 96, 320), torch.bool)
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from depthloss._checks import check_depth_map, check_float, check_int, check_mask

__all__ = ["SceneBatch", "batches", "intrinsics", "lidar_pattern", "make_scenes", "sparsify"]

# --- scene constants (documented in the module docstring) -------------------------------
FOCAL_RATIO = 0.58  # focal length / max(H, W), KITTI's ratio
NUM_BOXES = 5  # box slots per scene (1..NUM_BOXES active)
NUM_SPHERES = 4  # sphere slots per scene (0..NUM_SPHERES active)
FAR_MIN = 2.5  # least horizontal distance of an ordinary object's nearest point, metres
CONTACT_MARGIN = 1.15  # ordinary objects stand this factor beyond the nearest visible ground
CAM_HEIGHT = (1.5, 1.7)  # camera height above the ground, metres (a fixed mount, like a car's)
CAM_PITCH = (0.5, 2.5)  # downward pitch, degrees
CAM_ROLL = 1.0  # roll, +- degrees
GROUND_CELL = (0.9, 1.1)  # ground checker cell, metres (paving of a known size)
OBJECT_CELL = 0.5  # world-space checker cell on ordinary boxes and spheres, metres
NEAR_CELL = 0.04  # world-space checker cell on near-field objects, metres
TEXTURE_CONTRAST = 0.35  # relative albedo modulation of the object checkers
NEAR_POST_HALF = (0.07, 0.08)  # half width of the near-field post, metres (a known size)
NEAR_POST_YAW = 5.0  # +- degrees: the post faces the camera, so its apparent width tells its distance
NEAR_MAX = 1.25  # upper limit of near_range: ground and ordinary objects are always farther
NOISE_STD = 0.01  # sensor noise of the image
LIDAR_MAX_KEEP = 0.95  # largest per-point keep rate along a beam
_CHUNK_PIXELS = 1 << 18  # pixels per rendering chunk (bounds memory)

Device = Union[str, torch.device, None]


class SceneBatch(NamedTuple):
    """A batch of synthetic scenes (all tensors on the requested device).

    Attributes:
        image: ``(B, 3, H, W)`` RGB in [0, 1], requested dtype.
        depth: ``(B, 1, H, W)`` metric z-depth in metres; 0 where not ``valid``.
        valid: ``(B, 1, H, W)`` bool, a surface within ``max_depth``.
        sparse_depth: ``(B, 1, H, W)`` LiDAR-like depth, equal to ``depth`` where
            ``sparse_valid`` and 0 elsewhere ("no return").
        sparse_valid: ``(B, 1, H, W)`` bool LiDAR returns (a subset of ``valid``).
        intrinsics: ``(B, 3, 3)`` pinhole matrices ``[[f, 0, cx], [0, f, cy], [0, 0, 1]]``.
    """

    image: Tensor
    depth: Tensor
    valid: Tensor
    sparse_depth: Tensor
    sparse_valid: Tensor
    intrinsics: Tensor

    def to(self, *args: Any, **kwargs: Any) -> SceneBatch:
        """Move every tensor like :meth:`torch.Tensor.to` (dtype changes leave the masks bool).

        Example:
            >>> b = make_scenes(1, height=8, width=8).to(torch.float64)
            >>> b.depth.dtype, b.valid.dtype
            (torch.float64, torch.bool)
        """
        out = []
        for t in self:
            if t.dtype == torch.bool:
                moved = t.to(*args, **kwargs)
                out.append(moved if moved.dtype == torch.bool else moved.bool())
            else:
                out.append(t.to(*args, **kwargs))
        return SceneBatch(*out)


# --- argument checks ---------------------------------------------------------------------


def _check_size(name: str, value: Any) -> int:
    return check_int(name, value, low=1)


def _check_dtype(dtype: Any) -> torch.dtype:
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch.dtype, got {type(dtype).__name__}")
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype}")
    return dtype


def _check_device(device: Device) -> torch.device:
    if device is None:
        return torch.device("cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a str or torch.device, got {type(device).__name__}")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device must name a torch device, got {device!r}") from exc


def _check_fraction(fraction: Any, name: str = "lidar_fraction") -> float:
    return float(check_float(name, fraction, low=0.0, high=1.0, low_inclusive=False))


def _check_near_range(near_range: Any) -> Tuple[float, float]:
    if not isinstance(near_range, (tuple, list)) or len(near_range) != 2:
        raise TypeError(f"near_range must be a pair (low, high) of metres, got {near_range!r}")
    lo = check_float("near_range[0]", near_range[0], low=0.0, low_inclusive=False)
    hi = check_float("near_range[1]", near_range[1], low=0.0, low_inclusive=False)
    if lo > hi:
        raise ValueError(f"near_range must be (low, high) with low <= high, got {tuple(near_range)}")
    if hi > NEAR_MAX:
        raise ValueError(
            f"near_range[1] must be <= {NEAR_MAX} (the closest the ground or other objects come), got {hi}"
        )
    return lo, hi


# --- random streams ----------------------------------------------------------------------


def _generator(seed: int, index: int, stream: int) -> torch.Generator:
    """A CPU generator for scene ``index`` of ``seed``; ``stream`` 0 = scene, 1 = LiDAR."""
    state = np.random.SeedSequence([seed, index, stream]).generate_state(1, np.uint64)[0]
    g = torch.Generator(device="cpu")
    g.manual_seed(int(state))
    return g


@contextlib.contextmanager
def _one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Render CPU scenes on one thread, restoring the caller's setting afterwards.

    The renderer is a long sequence of medium-sized element-wise ops: spread over several
    OpenMP threads each op pays a fork-join, and on a busy machine every op can wait a whole
    scheduler time slice for a descheduled worker (measured: 3-10x slower with 2 threads
    than with 1 on a loaded 2-core machine). Parallelize across processes instead.
    """
    old = torch.get_num_threads()
    if device.type != "cpu" or old == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# --- camera ------------------------------------------------------------------------------


def _camera(height: int, width: int) -> Tuple[float, float, float]:
    """Focal length and principal point ``(f, cx, cy)`` in pixels."""
    return FOCAL_RATIO * max(height, width), (width - 1) / 2.0, (height - 1) / 2.0


def intrinsics(
    n: int,
    height: int = 96,
    width: int = 320,
    *,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Pinhole intrinsics of the synthetic camera, shape ``(n, 3, 3)``.

    The focal length is ``0.58 · max(height, width)`` pixels and the principal point the
    image centre ``((width − 1) / 2, (height − 1) / 2)`` (pixel centres at integers), so
    ``depth · K⁻¹ [u, v, 1]ᵀ`` back-projects pixel ``(u, v)`` to camera coordinates.

    Args:
        n: number of matrices, ``>= 1``.
        height: image height in pixels, ``>= 1``.
        width: image width in pixels, ``>= 1``.
        device: device of the result (default CPU).
        dtype: floating dtype of the result (default float32).

    Returns:
        ``(n, 3, 3)`` tensor ``[[f, 0, cx], [0, f, cy], [0, 0, 1]]``.

    Example:
        >>> intrinsics(1, height=96, width=320)
        tensor([[[185.6000,   0.0000, 159.5000],
                 [  0.0000, 185.6000,  47.5000],
                 [  0.0000,   0.0000,   1.0000]]])
    """
    _check_size("n", n)
    _check_size("height", height)
    _check_size("width", width)
    device = _check_device(device)
    dtype = _check_dtype(dtype)
    f, cx, cy = _camera(height, width)
    k = torch.tensor([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return k.to(device=device, dtype=dtype).expand(n, 3, 3).clone()


# --- scene parameters --------------------------------------------------------------------


class _Draws:
    """Hands out consecutive columns of a ``(B, N)`` table of uniforms in [0, 1)."""

    def __init__(self, table: Tensor) -> None:
        self.table = table
        self.pos = 0

    def take(self, *shape: int) -> Tensor:
        count = math.prod(shape)
        out = self.table[:, self.pos : self.pos + count].reshape(self.table.shape[0], *shape)
        self.pos += count
        return out

    def uniform(self, low: float, high: float, *shape: int) -> Tensor:
        return low + (high - low) * self.take(*shape)


def _num_draws() -> int:
    """Uniform draws per scene (must match :func:`_scene_params`)."""
    scene = 3 + 2 + 1 + 3 + 6 + 2 + 2  # camera, sun, fog, haze, ground colours, checker, counts
    near = 1 + 1 + 1 + 3 + 1 + 3  # flag, distance, x, post size and top, yaw, rgb
    boxes = NUM_BOXES * (1 + 1 + 3 + 1 + 3)  # distance, bearing, half sizes, yaw, rgb
    spheres = NUM_SPHERES * (1 + 1 + 1 + 3)  # distance, bearing, radius, rgb
    return scene + near + boxes + spheres


def _rotate(r: Tensor, v: Tensor) -> Tensor:
    """``r @ v`` for ``r`` of shape ``(B, 3, 3)`` and ``v`` of shape ``(B, ..., 3)``, elementwise."""
    shape = (r.shape[0],) + (1,) * (v.dim() - 2)
    rows = [r[:, i].reshape(*shape, 3) for i in range(3)]
    return torch.stack([(row * v).sum(-1) for row in rows], dim=-1)


def _scene_params(
    u: Tensor, height: int, width: int, near_prob: float, near_range: Tuple[float, float], max_depth: float
) -> Dict[str, Tensor]:
    """Turn a ``(B, N)`` float64 table of uniforms into scene geometry in camera coordinates."""
    d = _Draws(u)
    n = u.shape[0]
    f, _, _ = _camera(height, width)
    half_x = (width / 2.0) / f  # tan of the half field of view
    half_y = (height / 2.0) / f

    # camera: height above ground, pitch (down), roll -> rotation world -> camera
    cam_h = d.uniform(*CAM_HEIGHT)
    pitch = torch.deg2rad(d.uniform(*CAM_PITCH))
    roll = torch.deg2rad(d.uniform(-CAM_ROLL, CAM_ROLL))
    cp, sp, cr, sr = torch.cos(pitch), torch.sin(pitch), torch.cos(roll), torch.sin(roll)
    zero, one = torch.zeros_like(cp), torch.ones_like(cp)
    x0 = torch.stack([one, zero, zero], -1)
    y0 = torch.stack([zero, cp, -sp], -1)
    z_axis = torch.stack([zero, sp, cp], -1)
    x_axis = cr[:, None] * x0 + sr[:, None] * y0
    y_axis = -sr[:, None] * x0 + cr[:, None] * y0
    rot = torch.stack([x_axis, y_axis, z_axis], dim=1)  # rows: camera axes in world coordinates
    down = rot[:, :, 1]  # world +y (down) in camera coordinates

    # sun (towards the light), fog, haze colour, ground
    sun_el = torch.deg2rad(d.uniform(20.0, 65.0))
    sun_az = d.uniform(-math.pi, math.pi)
    ce, se = torch.cos(sun_el), torch.sin(sun_el)
    sun_w = torch.stack([ce * torch.sin(sun_az), -se, ce * torch.cos(sun_az)], -1)
    sun = _rotate(rot, sun_w)
    fog_dist = d.uniform(50.0, 100.0)
    haze = torch.stack([d.uniform(0.72, 0.82), d.uniform(0.76, 0.86), d.uniform(0.82, 0.92)], -1)
    ground_a = d.uniform(0.25, 0.55, 3)
    ground_b = d.uniform(0.1, 0.35, 3)
    checker = d.uniform(*GROUND_CELL)
    checker_angle = d.uniform(0.0, math.pi / 2)
    n_boxes = 1 + (d.take() * NUM_BOXES).floor()
    n_spheres = (d.take() * (NUM_SPHERES + 1)).floor()

    # near-field object (camera coordinates)
    near_on = d.take() < near_prob
    near_z = d.uniform(near_range[0], near_range[1])
    near_sx = d.uniform(-0.5, 0.5)
    pil_hx, pil_hz = d.uniform(*NEAR_POST_HALF), d.uniform(*NEAR_POST_HALF)
    pil_top = -d.uniform(0.3, 1.5)  # world y of the post top (above the camera)
    pil_yaw = torch.deg2rad(d.uniform(-NEAR_POST_YAW, NEAR_POST_YAW))
    near_rgb = d.uniform(0.15, 0.85, 3)

    # ordinary boxes (world placement, then camera coordinates)
    # nearest ground the camera sees (bottom image row): objects stand beyond it, so the
    # row where they touch the ground is in view (the "height in the image" cue)
    contact = cam_h / torch.tan(math.atan(half_y) + pitch).clamp_min(1e-3)
    lo = (CONTACT_MARGIN * contact).clamp(min=FAR_MIN, max=0.5 * max(max_depth, 2 * FAR_MIN))
    far_max = max(FAR_MIN * 1.2, 0.6 * max_depth)
    log_lo = torch.log(lo)[:, None]
    log_hi = torch.log(torch.maximum(lo * 1.2, torch.full_like(lo, far_max)))[:, None]
    b_dist = torch.exp(log_lo + (log_hi - log_lo) * d.take(NUM_BOXES))
    b_bear = d.uniform(-0.9, 0.9, NUM_BOXES) * half_x
    b_half = torch.stack(
        [d.uniform(0.3, 1.5, NUM_BOXES), d.uniform(0.4, 1.2, NUM_BOXES), d.uniform(0.3, 1.5, NUM_BOXES)], -1
    )
    b_yaw = d.uniform(0.0, math.pi, NUM_BOXES)
    b_rgb = d.uniform(0.15, 0.85, NUM_BOXES, 3)
    cy_, sy_ = torch.cos(b_yaw), torch.sin(b_yaw)
    z_ext = b_half[..., 0] * sy_.abs() + b_half[..., 2] * cy_.abs()
    bz = b_dist + z_ext
    b_center_w = torch.stack([bz * b_bear, cam_h[:, None] - b_half[..., 1], bz], -1)
    zeros_b = torch.zeros_like(cy_)
    b_axes_w = torch.stack(  # (B, K, 3 axes, 3 coords)
        [
            torch.stack([cy_, zeros_b, -sy_], -1),
            torch.stack([zeros_b, torch.ones_like(cy_), zeros_b], -1),
            torch.stack([sy_, zeros_b, cy_], -1),
        ],
        dim=2,
    )
    b_center = _rotate(rot, b_center_w)
    b_axes = _rotate(rot, b_axes_w.reshape(n, -1, 3)).reshape(n, NUM_BOXES, 3, 3)
    b_active = torch.arange(NUM_BOXES, dtype=u.dtype)[None] < n_boxes[:, None]

    # ordinary spheres
    s_dist = torch.exp(log_lo + (log_hi - log_lo) * d.take(NUM_SPHERES))
    s_bear = d.uniform(-0.9, 0.9, NUM_SPHERES) * half_x
    s_rad = d.uniform(0.3, 1.0, NUM_SPHERES)
    s_rgb = d.uniform(0.15, 0.85, NUM_SPHERES, 3)
    sz = s_dist + s_rad
    s_center = _rotate(rot, torch.stack([sz * s_bear, cam_h[:, None] - s_rad, sz], -1))
    s_active = torch.arange(NUM_SPHERES, dtype=u.dtype)[None] < n_spheres[:, None]

    # near pillar: a ground-standing box whose nearest point (camera z) is near_z
    cyn, syn = torch.cos(pil_yaw), torch.sin(pil_yaw)
    pil_hy = (cam_h - pil_top) / 2.0
    pil_half = torch.stack([pil_hx, pil_hy, pil_hz], -1)
    zn = torch.zeros_like(cyn)
    pil_axes_w = torch.stack(
        [
            torch.stack([cyn, zn, -syn], -1),
            torch.stack([zn, torch.ones_like(cyn), zn], -1),
            torch.stack([syn, zn, cyn], -1),
        ],
        dim=1,
    )
    pil_axes = _rotate(rot, pil_axes_w)  # (B, 3 axes, 3 coords) in camera coordinates
    pil_cz = near_z + (pil_half * pil_axes[..., 2].abs()).sum(-1)
    pil_cx = pil_cz * near_sx * half_x
    pil_yw = (cam_h + pil_top) / 2.0  # world y of the pillar centre; solve camera y for it
    pil_cy = (pil_yw - rot[:, 0, 1] * pil_cx - rot[:, 2, 1] * pil_cz) / rot[:, 1, 1]
    pil_center = torch.stack([pil_cx, pil_cy, pil_cz], -1)

    use_pillar = near_on
    up = use_pillar[:, None]
    b_center[:, 0] = torch.where(up, pil_center, b_center[:, 0])
    b_axes[:, 0] = torch.where(up[..., None], pil_axes, b_axes[:, 0])
    b_half[:, 0] = torch.where(up, pil_half, b_half[:, 0])
    b_rgb[:, 0] = torch.where(up, near_rgb, b_rgb[:, 0])
    # world-space texture cells: coarse on ordinary objects, fine on the near-field ones
    b_cell = torch.full_like(b_half[..., 0], OBJECT_CELL)
    s_cell = torch.full_like(s_rad, OBJECT_CELL)
    b_cell[:, 0] = torch.where(use_pillar, NEAR_CELL, b_cell[:, 0])

    assert d.pos == u.shape[1], (d.pos, u.shape[1])  # sync-ok: internal invariant on Python ints
    return {
        "rot": rot,
        "down": down,
        "cam_h": cam_h,
        "sun": sun,
        "fog_dist": fog_dist,
        "haze": haze,
        "ground_a": ground_a,
        "ground_b": ground_b,
        "checker": checker,
        "checker_angle": checker_angle,
        "b_center": b_center,
        "b_axes": b_axes,
        "b_half": b_half,
        "b_rgb": b_rgb,
        "b_active": b_active,
        "s_center": s_center,
        "s_rad": s_rad,
        "s_rgb": s_rgb,
        "s_active": s_active,
        "b_cell": b_cell,
        "s_cell": s_cell,
    }


# --- ray casting -------------------------------------------------------------------------
#
# Every object gets a conservative screen-space rectangle: the projection of its bounding
# corners (for shadows, of the volume it sweeps towards the ground, away from the sun).
# Only the (pixel, object) pairs inside these rectangles are intersected. The pairs are
# enumerated with ``repeat_interleave`` and the nearest hit per pixel is found with
# ``scatter_reduce``, so the work is proportional to the screen area the objects cover and
# there is no Python loop over pixels or objects.

_SIGNS = torch.tensor([[sx, sy, sz] for sx in (-1.0, 1.0) for sy in (-1.0, 1.0) for sz in (-1.0, 1.0)])
_BIG = 1e30  # stands in for an infinite slab parameter (rays parallel to a box face)


def _rects(points: Tensor, active: Tensor, height: int, width: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Pixel rectangle ``(u0, v0, nu, nv)`` covering the projection of ``points`` ``(O, M, 3)``.

    Rectangles of inactive objects are empty; if a point is not in front of the camera the
    rectangle is the whole image (conservative).
    """
    f, cx, cy = _camera(height, width)
    z = points[..., 2]
    behind = (z <= 1e-3).any(-1)
    zs = z.clamp_min(1e-3)
    u = f * points[..., 0] / zs + cx
    v = f * points[..., 1] / zs + cy
    u0 = torch.where(behind, 0.0, torch.floor(u.amin(-1)).clamp(0, width))
    v0 = torch.where(behind, 0.0, torch.floor(v.amin(-1)).clamp(0, height))
    u1 = torch.where(behind, width - 1.0, torch.ceil(u.amax(-1)).clamp(-1, width - 1))
    v1 = torch.where(behind, height - 1.0, torch.ceil(v.amax(-1)).clamp(-1, height - 1))
    nu = (u1 - u0 + 1).clamp_min(0).long() * active
    nv = (v1 - v0 + 1).clamp_min(0).long() * active
    return u0.long(), v0.long(), nu, nv


def _pairs(
    rects: Tuple[Tensor, Tensor, Tensor, Tensor], per_scene: int, height: int, width: int, table: Tensor
) -> Tuple[Tensor, Tensor, Tensor]:
    """Enumerate the pixels of every object's rectangle.

    Returns ``(key, obj, columns)`` per pair: the flat pixel index ``scene · H·W + v · W + u``
    into the chunk, the flat object index, and the object's ``table`` ``(C, O)`` columns
    repeated to ``(C, P)``. Keys are built as a cumulative sum of increments (1 along a
    rectangle's row, a jump at the start of each row), which avoids integer division.
    """
    u0, v0, nu, nv = rects
    device = nu.device
    nv = nv * (nu > 0)
    counts = nu * nv
    total = int(counts.sum())
    num = counts.shape[0]
    obj = torch.repeat_interleave(torch.arange(num, device=device), counts, output_size=total)
    cols = table.repeat_interleave(counts, dim=1, output_size=total)
    if total == 0:
        return obj, obj, cols
    seg_obj = torch.repeat_interleave(torch.arange(num, device=device), nv)  # one segment per rectangle row
    seg_row = torch.arange(seg_obj.shape[0], device=device) - (torch.cumsum(nv, 0) - nv)[seg_obj]
    seg_nu = nu[seg_obj]
    seg_scene = torch.div(seg_obj, per_scene, rounding_mode="floor")
    seg_key = seg_scene * (height * width) + (v0[seg_obj] + seg_row) * width + u0[seg_obj]
    seg_pos = torch.cumsum(seg_nu, 0) - seg_nu
    prev_last = torch.cat([seg_key.new_zeros(1), seg_key[:-1] + seg_nu[:-1] - 1])
    delta = torch.ones(total, device=device, dtype=torch.long).index_copy_(0, seg_pos, seg_key - prev_last)
    return torch.cumsum(delta, 0), obj, cols


def _nearest(key: Tensor, t: Tensor, obj: Tensor, size: int) -> Tuple[Tensor, Tensor]:
    """Per-pixel minimum of ``t`` over pairs and the (largest) object index attaining it (-1: none)."""
    t_min = torch.full((size,), math.inf, device=t.device, dtype=t.dtype).scatter_reduce_(0, key, t, "amin")
    win = torch.isfinite(t) & (t == t_min.index_select(0, key))
    idx = torch.full((size,), -1, device=t.device, dtype=torch.long)
    idx.scatter_reduce_(0, key, torch.where(win, obj, -1), "amax")
    return t_min, idx


def _any(key: Tensor, flag: Tensor, size: int) -> Tensor:
    """Per-pixel logical or of ``flag`` over pairs."""
    out = torch.zeros(size + 1, device=key.device, dtype=torch.bool)
    out.scatter_(0, torch.where(flag, key, size), True)
    return out[:size]


def _render_chunk(
    p: Dict[str, Tensor], height: int, width: int, max_depth: float, dtype: torch.dtype, device: torch.device
) -> Tuple[Tensor, Tensor, Tensor]:
    """Render scenes ``p`` (camera coordinates): ``(image (b, 3, HW), t (b, HW), valid (b, HW))``."""
    f, cx, cy = _camera(height, width)
    b = p["rot"].shape[0]
    hw = height * width
    size = b * hw
    inf = math.inf
    kb, ks = NUM_BOXES, NUM_SPHERES

    # primary rays t·D, D = ((u − cx)/f, (v − cy)/f, 1): the ray parameter t is the z-depth
    dx = ((torch.arange(width, device=device, dtype=dtype) - cx) / f).repeat(height)  # (HW,)
    dy = ((torch.arange(height, device=device, dtype=dtype) - cy) / f).repeat_interleave(width)
    len2 = dx * dx + dy * dy + 1.0
    dx_all, dy_all, len2_all = dx.repeat(b), dy.repeat(b), len2.repeat(b)  # (b·HW,) for pair lookups

    # ground plane: points with P·down = cam_h
    down = p["down"]
    dn = [down[:, j, None] for j in range(3)]  # (b, 1) each
    denom = torch.addcmul(torch.addcmul(dn[2], dx, dn[0]), dy, dn[1])  # (b, HW)
    t_ground = torch.where(denom > 1e-9, p["cam_h"][:, None] / denom.clamp_min(1e-9), inf)

    # flat object tables
    b_center = p["b_center"].reshape(-1, 3)
    b_axes = p["b_axes"].reshape(-1, 3, 3)  # (O, axis, coord)
    b_half = p["b_half"].reshape(-1, 3)
    b_off = (b_center[:, None, :] * b_axes).sum(-1)  # centre · axis_i
    b_active = p["b_active"].reshape(-1)
    s_center = p["s_center"].reshape(-1, 3)
    s_rad = p["s_rad"].reshape(-1)
    s_active = p["s_active"].reshape(-1)
    s_cc = (s_center * s_center).sum(-1) - s_rad * s_rad
    signs = _SIGNS.to(device=device, dtype=dtype)
    b_corners = b_center[:, None, :] + ((signs * b_half[:, None, :])[..., None] * b_axes[:, None]).sum(2)  # (O, 8, 3)
    s_corners = s_center[:, None, :] + signs * s_rad[:, None, None]

    # primary rays against boxes (slab test), remembering the entry face's normal
    table = torch.cat([b_axes.reshape(-1, 9), b_off, b_half], 1).T.contiguous()  # (15, O)
    key, obj, col = _pairs(_rects(b_corners, b_active, height, width), kb, height, width, table)
    rx, ry = dx_all.index_select(0, key), dy_all.index_select(0, key)

    def slab(i: int) -> Tuple[Tensor, Tensor, Tensor]:
        """Entry and exit distances through the i-th pair of faces, and the ray-axis cosine."""
        d = torch.addcmul(torch.addcmul(col[3 * i + 2], rx, col[3 * i]), ry, col[3 * i + 1])
        inv = torch.reciprocal(d).clamp_(-_BIG, _BIG)
        mid = col[9 + i] * inv
        span = (col[12 + i] * inv).abs_()
        return mid - span, mid + span, d

    t_near, t_far, d = slab(0)
    face, facing = torch.zeros_like(key), d > 0
    for i in (1, 2):
        lo, hi, d = slab(i)
        better = lo > t_near
        t_near = torch.where(better, lo, t_near)
        t_far = torch.minimum(t_far, hi)
        face = torch.where(better, i, face)
        facing = torch.where(better, d > 0, facing)
    t_pair = torch.where((t_near <= t_far) & (t_near > 0), t_near, inf)
    t_box, i_box = _nearest(key, t_pair, obj, size)
    # normal of the entry face: -sign(d) · axis; written by the winning pair of each pixel
    sgn = torch.where(facing, -1.0, 1.0).to(dtype)
    normal = torch.stack(
        [torch.where(face == 0, col[j], torch.where(face == 1, col[3 + j], col[6 + j])) * sgn for j in range(3)]
    )
    target = torch.where(obj == i_box.index_select(0, key), key, size)
    n_box = torch.zeros(3, size + 1, device=device, dtype=dtype).scatter_(1, target.expand(3, -1), normal)[:, :size]

    # primary rays against spheres: |t D − c|² = r²
    table = torch.cat([s_center, s_cc[:, None]], 1).T.contiguous()  # (4, O)
    key, obj, col = _pairs(_rects(s_corners, s_active, height, width), ks, height, width, table)
    dc = torch.addcmul(torch.addcmul(col[2], dx_all.index_select(0, key), col[0]), dy_all.index_select(0, key), col[1])
    a = len2_all.index_select(0, key)
    disc = dc * dc - a * col[3]
    t_pair = (dc - disc.clamp_min(0).sqrt()) / a
    t_pair = torch.where((disc > 0) & (t_pair > 0), t_pair, inf)
    t_sph, i_sph = _nearest(key, t_pair, obj, size)

    t_box, t_sph = t_box.view(b, hw), t_sph.view(b, hw)
    t = torch.minimum(t_ground, torch.minimum(t_sph, t_box))
    hit = torch.isfinite(t)
    is_box = hit & (t_box <= t_sph) & (t_box <= t_ground)
    is_sph = hit & ~is_box & (t_sph <= t_ground)
    t_safe = torch.where(hit, t, 0.0)
    px, py, pz = t_safe * dx, t_safe * dy, t_safe  # hit points (b, HW)

    # normals and albedos of the visible surface
    up = [-c for c in dn]
    sph = torch.cat([s_center, s_rad[:, None], p["s_rgb"].reshape(-1, 3)], 1).T.index_select(1, i_sph.clamp_min(0))
    sph = sph.view(7, b, hw)
    rgb_box = p["b_rgb"].reshape(-1, 3).T.index_select(1, i_box.clamp_min(0)).view(3, b, hw)
    n_box = n_box.view(3, b, hw)
    normals = [
        torch.where(is_box, n_box[j], torch.where(is_sph, (q - sph[j]) / sph[3], up[j]))
        for j, q in enumerate((px, py, pz))
    ]

    # ground checker in world coordinates (world = Rᵀ · camera), faded where a pixel covers
    # more than a cell; the coordinates are t times a per-scene linear function of D
    rot, ang, cell = p["rot"], p["checker_angle"][:, None], p["checker"][:, None]
    ca, sa = torch.cos(ang) / cell, torch.sin(ang) / cell
    ku = ca * rot[:, :, 0] + sa * rot[:, :, 2]  # (b, 3)
    kv = ca * rot[:, :, 2] - sa * rot[:, :, 0]
    gx = t_safe * torch.addcmul(torch.addcmul(ku[:, 2:], dx, ku[:, 0:1]), dy, ku[:, 1:2])
    gz = t_safe * torch.addcmul(torch.addcmul(kv[:, 2:], dx, kv[:, 0:1]), dy, kv[:, 1:2])
    parity = (gx.floor_() + gz.floor_()).remainder_(2.0).mul_(2.0).sub_(1.0)  # ±1
    footprint = t_safe * len2 / (f * denom.clamp_min(1e-6))  # metres of ground per pixel
    contrast = (1.0 - footprint / cell).clamp_(0.0, 1.0).mul_(parity)
    ga, gb = p["ground_a"], p["ground_b"]
    mean, amp = 0.5 * (ga + gb), 0.5 * (ga - gb)
    ground = [torch.addcmul(mean[:, j, None], contrast, amp[:, j, None]) for j in range(3)]
    albedo = [torch.where(is_box, rgb_box[j], torch.where(is_sph, sph[4 + j], ground[j])) for j in range(3)]

    # object checkers: a solid checker of a world-space cell in object coordinates (a box's
    # own axes; a sphere's camera axes about its centre), faded where a pixel covers more
    # than half a cell, so its apparent density tells the distance (texture gradient)
    i_b, i_s = i_box.clamp_min(0), i_sph.clamp_min(0)
    pts = torch.stack([px.reshape(-1), py.reshape(-1), pz.reshape(-1)], -1)  # (b·HW, 3)
    loc_b = ((pts - b_center.index_select(0, i_b))[:, None, :] * b_axes.index_select(0, i_b)).sum(-1)
    loc_s = pts - s_center.index_select(0, i_s)
    on_box = is_box.reshape(-1)
    loc = torch.where(on_box[:, None], loc_b, loc_s)
    cell_o = torch.where(
        on_box, p["b_cell"].reshape(-1).index_select(0, i_b), p["s_cell"].reshape(-1).index_select(0, i_s)
    )
    par = (loc / cell_o[:, None]).add_(0.25).floor_().sum(-1).remainder_(2.0).mul_(2.0).sub_(1.0)
    px_size = t_safe.reshape(-1) * len2_all.sqrt() / f  # metres per pixel, fronto-parallel
    tex = (1.0 - 2.0 * px_size / cell_o).clamp_(0.0, 1.0).mul_(par).mul_(TEXTURE_CONTRAST).add_(1.0).view(b, hw)
    on_obj = is_box | is_sph
    albedo = [torch.where(on_obj, a * tex, a) for a in albedo]

    # shadow rays P + s·L towards the sun, against every object but the pixel's own
    sun = p["sun"]
    l_down = (sun * down).sum(-1)  # < 0: the sun is above the horizon

    def sweep(corners: Tensor, per_scene: int) -> Tensor:
        """Corners and their shadows on the ground: a hull of the volume an object can shade."""
        scene = torch.arange(b, device=device).repeat_interleave(per_scene)
        s = ((corners * down[scene, None, :]).sum(-1) - p["cam_h"][scene, None]) / l_down[scene, None]
        return torch.cat([corners, corners - s[..., None] * sun[scene, None, :]], 1)

    flat = [q.reshape(-1) for q in (px, py, pz)]
    own_box = torch.where(is_box.view(-1), i_box, -1)
    own_sph = torch.where(is_sph.view(-1), i_sph, -1)

    # boxes: the shadow ray's direction is the same for every pixel, so the slab's
    # 1/(L·a_i) and half-width are per-object constants
    sun_o = sun.repeat_interleave(kb, 0)
    inv = torch.reciprocal((b_axes * sun_o[:, None, :]).sum(-1)).clamp_(-_BIG, _BIG)  # (O, 3)
    table = torch.cat([(b_axes * inv[..., None]).reshape(-1, 9), b_off * inv, (b_half * inv).abs()], 1).T.contiguous()
    key, obj, col = _pairs(_rects(sweep(b_corners, kb), b_active, height, width), kb, height, width, table)
    q = [c.index_select(0, key) for c in flat]

    def shadow_slab(i: int) -> Tuple[Tensor, Tensor]:
        # slab centre along the shadow ray: (c·a − P·a) / (L·a), with a' = a / (L·a) precomputed
        mid = torch.addcmul(col[9 + i], q[0], col[3 * i], value=-1.0)
        mid = torch.addcmul(mid, q[1], col[3 * i + 1], value=-1.0).addcmul_(q[2], col[3 * i + 2], value=-1.0)
        return mid - col[12 + i], mid + col[12 + i]

    t_near, t_far = shadow_slab(0)
    for i in (1, 2):
        lo, hi = shadow_slab(i)
        t_near, t_far = torch.maximum(t_near, lo), torch.minimum(t_far, hi)
    blocked = _any(key, (t_near <= t_far) & (t_near > 0) & (obj != own_box.index_select(0, key)), size)

    # spheres: blocked if the sphere lies ahead (L·(P − c) < 0) and the line meets it
    lp = torch.addcmul(torch.addcmul(sun[:, 2:] * pz, px, sun[:, 0:1]), py, sun[:, 1:2]).view(-1)
    pp = (px * px + py * py + pz * pz).view(-1)
    sun_o = sun.repeat_interleave(ks, 0)
    table = torch.cat([s_center, (sun_o * s_center).sum(-1, keepdim=True), s_cc[:, None]], 1).T.contiguous()  # (5, O)
    key, obj, col = _pairs(_rects(sweep(s_corners, ks), s_active, height, width), ks, height, width, table)
    q = [c.index_select(0, key) for c in flat]
    bq = lp.index_select(0, key) - col[3]
    pc = torch.addcmul(torch.addcmul(q[0] * col[0], q[1], col[1]), q[2], col[2])
    occ = pp.index_select(0, key) - 2.0 * pc + col[4]  # |P − c|² − r²
    flag = (bq < 0) & (occ > 0) & (bq * bq > occ) & (obj != own_sph.index_select(0, key))
    blocked |= _any(key, flag, size)
    lit = (~blocked).view(b, hw)

    # shading, fog, sky
    sl = [sun[:, j, None] for j in range(3)]
    n_dot_l = torch.addcmul(torch.addcmul(normals[0] * sl[0], normals[1], sl[1]), normals[2], sl[2]).clamp_(min=0.0)
    n_dot_up = torch.addcmul(torch.addcmul(normals[0] * up[0], normals[1], up[1]), normals[2], up[2])
    shade = torch.where(lit, 0.75 * n_dot_l, 0.0).add_(n_dot_up, alpha=0.064).add_(0.256)  # 0.32·(0.8 + 0.2·n·up)
    fog = 1.0 - torch.exp(-t_safe / p["fog_dist"][:, None])
    elevation = -denom / len2.sqrt()  # sine of the ray's elevation above the horizon
    sky_mix = (elevation * 2.5).clamp_(0.0, 1.0).sqrt_()
    haze = p["haze"]
    channels = []
    for j, zen in enumerate((0.30, 0.50, 0.85)):
        h = haze[:, j, None]
        color = torch.lerp(albedo[j] * shade, h.expand(b, hw), fog)
        sky = torch.addcmul(h, sky_mix, zen - h)
        channels.append(torch.where(hit, color, sky))
    image = torch.stack(channels, 1)  # (b, 3, HW)
    valid = hit & (t <= max_depth)
    return image, t_safe, valid


# --- LiDAR -------------------------------------------------------------------------------


def _lidar_layout(fraction: float) -> Tuple[int, float, float]:
    """Beam spacing ``k`` (rows), per-point keep rate and jitter amplitude for ``fraction``."""
    k = max(1, math.floor(LIDAR_MAX_KEEP / fraction + 1e-9))
    keep = min(1.0, fraction * k)
    amp = min(0.5, (k - 1) / 4.0)  # offset and bow amplitude: adjacent beams never share a pixel
    return k, keep, amp


def _lidar_masks(gens: List[torch.Generator], height: int, width: int, fraction: float) -> Tensor:
    """``(B, H, W)`` bool beam pattern, drawn on the CPU from one generator per scene."""
    k, keep, amp = _lidar_layout(fraction)
    beams = (height + 2) // k + 3
    rows = []
    for g in gens:
        offset = torch.rand(1, generator=g, dtype=torch.float64)
        jitter = torch.rand(beams, generator=g, dtype=torch.float64)
        bow = torch.rand(beams, generator=g, dtype=torch.float64)
        drop = torch.rand(beams, width, generator=g, dtype=torch.float64)
        rows.append(torch.cat([offset.expand(beams)[:, None], jitter[:, None], bow[:, None], drop], 1))
    draws = torch.stack(rows)  # (B, beams, 3 + W)
    n = draws.shape[0]
    x = (torch.arange(width, dtype=torch.float64) - (width - 1) / 2.0) / max(width / 2.0, 1.0)
    base = (torch.arange(beams, dtype=torch.float64) - 1.0) * k  # first beam above the image
    line = (
        base[None, :, None]
        + draws[:, :, 0, None] * k
        + amp * (2.0 * draws[:, :, 1, None] - 1.0)
        + amp * (2.0 * draws[:, :, 2, None] - 1.0) * x * x
    )
    row = torch.floor(line).long()  # (B, beams, W)
    ok = (row >= 0) & (row < height) & (draws[:, :, 3:] < keep)
    flat = row.clamp(0, height - 1) * width + torch.arange(width)
    flat = torch.where(ok, flat, torch.full_like(flat, height * width))  # dummy slot for dropped points
    mask = torch.zeros(n, height * width + 1, dtype=torch.bool)
    mask.scatter_(1, flat.reshape(n, -1), True)
    return mask[:, :-1].reshape(n, height, width)


def lidar_pattern(
    n: int,
    height: int = 96,
    width: int = 320,
    fraction: float = 0.15,
    seed: int = 0,
    *,
    offset: int = 0,
    device: Device = "cpu",
) -> Tensor:
    """LiDAR scan pattern: where a scanner would sample, independent of any scene.

    Beams run across the image along nearly horizontal lines, one every
    ``k = floor(0.95 / fraction)`` rows (at least 1), each shifted by a per-scene offset
    and a small per-beam offset and bow; along a beam each point is kept with probability
    ``fraction · k``. Every pixel is therefore sampled with probability exactly
    ``fraction``, and the samples concentrate on about ``H / k`` rows.

    Args:
        n: number of patterns, ``>= 1``.
        height: image height in pixels, ``>= 1``.
        width: image width in pixels, ``>= 1``.
        fraction: expected fraction of sampled pixels, in ``(0, 1]`` (default 0.15).
        seed: non-negative integer seed.
        offset: index of the first pattern in the seed's stream (pattern ``i`` is the one
            :func:`make_scenes` uses for scene ``offset + i``).
        device: device of the result (default CPU).

    Returns:
        ``(n, 1, height, width)`` bool tensor.

    Example:
        >>> m = lidar_pattern(2, height=96, width=320, fraction=0.15, seed=0)
        >>> tuple(m.shape), round(m.float().mean().item(), 2)
        ((2, 1, 96, 320), 0.15)
        >>> int(m[0, 0].any(dim=1).sum())  # rows that carry samples: about 96 / 6
        17
    """
    _check_size("n", n)
    _check_size("height", height)
    _check_size("width", width)
    fraction = _check_fraction(fraction, "fraction")
    check_int("seed", seed, low=0)
    check_int("offset", offset, low=0)
    device = _check_device(device)
    gens = [_generator(seed, offset + i, 1) for i in range(n)]
    return _lidar_masks(gens, height, width, fraction)[:, None].to(device)


def sparsify(
    depth: Tensor,
    valid: Optional[Tensor] = None,
    fraction: float = 0.15,
    seed: int = 0,
    *,
    offset: int = 0,
) -> Tuple[Tensor, Tensor]:
    """Sample a dense depth map with the LiDAR pattern of :func:`lidar_pattern`.

    ``sparsify(b.depth, b.valid, f, s)`` reproduces ``b.sparse_depth, b.sparse_valid`` of
    ``b = make_scenes(..., seed=s, lidar_fraction=f)``; it also turns any other dense depth
    (a rendered dataset, a network's output) into LiDAR-like sparse ground truth.

    Args:
        depth: ``(B, 1, H, W)`` or ``(B, H, W)`` floating dense depth.
        valid: optional bool mask of ``depth``'s shape; default ``isfinite(depth) & (depth > 0)``.
        fraction: expected fraction of valid pixels that get a return, in ``(0, 1]``.
        seed: non-negative integer seed.
        offset: index of the first image in the seed's stream.

    Returns:
        ``(sparse_depth, sparse_valid)``: ``depth`` where the pattern meets a valid pixel and
        0 elsewhere, and that bool mask; both of ``depth``'s shape, dtype and device.

    Example:
        >>> d = torch.full((1, 1, 12, 16), 5.0)
        >>> s, m = sparsify(d, fraction=0.25)
        >>> int(m.sum()), float(s[m].unique()[0]), float(s[~m].abs().sum())  # about 12·16/4 returns
        (50, 5.0, 0.0)
    """
    check_depth_map("depth", depth)
    valid = check_mask(valid, depth, "depth", "valid")
    fraction = _check_fraction(fraction, "fraction")
    check_int("seed", seed, low=0)
    check_int("offset", offset, low=0)
    if valid is None:
        valid = torch.isfinite(depth) & (depth > 0)
    height, width = depth.shape[-2:]
    if height < 1 or width < 1 or depth.shape[0] < 1:
        raise ValueError(f"depth must have at least one image of at least one pixel, got shape {tuple(depth.shape)}")
    gens = [_generator(seed, offset + i, 1) for i in range(depth.shape[0])]
    pattern = _lidar_masks(gens, height, width, fraction).to(depth.device).reshape(depth.shape)
    sparse_valid = pattern & valid
    return torch.where(sparse_valid, depth, torch.zeros_like(depth)), sparse_valid


# --- public entry points -----------------------------------------------------------------


def make_scenes(
    n: int,
    height: int = 96,
    width: int = 320,
    seed: int = 0,
    *,
    offset: int = 0,
    near_prob: float = 0.5,
    near_range: Tuple[float, float] = (0.3, 1.0),
    lidar_fraction: float = 0.15,
    max_depth: float = 80.0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> SceneBatch:
    """Render ``n`` deterministic synthetic scenes (see the module docstring for the model).

    Args:
        n: number of scenes, ``>= 1``.
        height: image height in pixels, ``>= 1`` (default 96).
        width: image width in pixels, ``>= 1`` (default 320).
        seed: non-negative integer seed; the same arguments give bit-identical output.
        offset: index of the first scene in the seed's stream: scene ``i`` of the result is
            scene ``offset + i`` of ``seed`` (used by :func:`batches`).
        near_prob: probability in [0, 1] that a scene contains a near-field post
            (default 0.5).
        near_range: ``(low, high)`` distance in metres of the near-field post's closest
            point, ``0 < low <= high <= 1.25`` (default (0.3, 1.0)). Nothing in a scene is
            closer than ``low``.
        lidar_fraction: expected fraction of *valid* pixels with a LiDAR return, in
            ``(0, 1]`` (default 0.15, about 7-15 % of all pixels).
        max_depth: range in metres, ``> 0`` (default 80). Surfaces farther away, and the
            sky, get ``depth = 0`` and ``valid = False``; ordinary objects are placed
            between the nearest visible ground (at least 2.5 m) and
            ``max(3, 0.6 · max_depth)`` m.
        device: device of the tensors (default CPU). Random draws always happen on the CPU.
        dtype: floating dtype of ``image``, ``depth``, ``sparse_depth`` and
            ``intrinsics`` (default float32; rendering runs in float32, or float64 for
            float64).

    Returns:
        A :class:`SceneBatch`.

    Note:
        On the CPU the call sets ``torch.set_num_threads(1)`` while it renders and restores
        the previous value before returning: the renderer's many medium-sized ops gain
        little from intra-op threads and lose a lot on a busy machine. For parallel
        generation use processes (e.g. ``DataLoader`` workers calling
        ``make_scenes(..., offset=...)``).

    Example:
        >>> b = make_scenes(8, height=64, width=64, seed=0, near_prob=1.0)
        >>> tuple(b.image.shape), tuple(b.depth.shape), b.valid.dtype
        ((8, 3, 64, 64), (8, 1, 64, 64), torch.bool)
        >>> bool((b.depth[b.valid] > 0.3).all()), bool((b.depth[b.valid] <= 80).all())
        (True, True)
        >>> bool((b.sparse_depth == torch.where(b.sparse_valid, b.depth, 0)).all())
        True
        >>> torch.where(b.valid, b.depth, torch.inf).amin(dim=(1, 2, 3))  # nearest point, metres
        tensor([0.3644, 0.3466, 0.3928, 0.7720, 0.5558, 0.6096, 0.6056, 0.3351])
    """
    _check_size("n", n)
    _check_size("height", height)
    _check_size("width", width)
    check_int("seed", seed, low=0)
    check_int("offset", offset, low=0)
    near_prob = check_float("near_prob", near_prob, low=0.0, high=1.0)
    near_range = _check_near_range(near_range)
    lidar_fraction = _check_fraction(lidar_fraction)
    max_depth = check_float("max_depth", max_depth, low=0.0, low_inclusive=False)
    device = _check_device(device)
    dtype = _check_dtype(dtype)
    cdtype = torch.float64 if dtype == torch.float64 else torch.float32

    hw = height * width
    draws = torch.empty(n, _num_draws(), dtype=torch.float64)
    noise = torch.empty(n, 3, hw, dtype=torch.float32)
    for i in range(n):
        g = _generator(seed, offset + i, 0)
        torch.rand(_num_draws(), generator=g, dtype=torch.float64, out=draws[i])
        torch.randn(3, hw, generator=g, dtype=torch.float32, out=noise[i])
    params = _scene_params(draws, height, width, near_prob, near_range, max_depth)
    params = {k: v.to(device=device, dtype=cdtype if v.is_floating_point() else v.dtype) for k, v in params.items()}

    chunk = max(1, _CHUNK_PIXELS // hw)
    image = noise.to(device=device, dtype=cdtype).mul_(NOISE_STD)
    depth = torch.empty(n, hw, device=device, dtype=cdtype)
    valid = torch.empty(n, hw, device=device, dtype=torch.bool)
    with _one_cpu_thread(device):
        for start in range(0, n, chunk):
            part = {k: v[start : start + chunk] for k, v in params.items()}
            rgb, t, ok = _render_chunk(part, height, width, max_depth, cdtype, device)
            image[start : start + chunk] += rgb
            depth[start : start + chunk] = torch.where(ok, t, 0.0)
            valid[start : start + chunk] = ok
        image = image.clamp_(0.0, 1.0).view(n, 3, height, width)
        depth, valid = depth.view(n, 1, height, width), valid.view(n, 1, height, width)

        gens = [_generator(seed, offset + i, 1) for i in range(n)]
        pattern = _lidar_masks(gens, height, width, lidar_fraction).to(device)[:, None]
        sparse_valid = pattern & valid
        sparse_depth = torch.where(sparse_valid, depth, 0.0)
    k = intrinsics(n, height, width, device=device, dtype=dtype)
    return SceneBatch(image.to(dtype), depth.to(dtype), valid, sparse_depth.to(dtype), sparse_valid, k)


def batches(
    batch_size: int,
    num_batches: Optional[int] = None,
    height: int = 96,
    width: int = 320,
    seed: int = 0,
    **kwargs: Any,
) -> Iterator[SceneBatch]:
    """Yield consecutive batches of the scene stream of ``seed`` (no scene repeats).

    Batch ``j`` is ``make_scenes(batch_size, height, width, seed, offset=j · batch_size,
    **kwargs)``, so iterating is reproducible and equivalent to one big call.

    Args:
        batch_size: scenes per batch, ``>= 1``.
        num_batches: number of batches, ``>= 1``, or ``None`` for an endless stream.
        height: image height in pixels.
        width: image width in pixels.
        seed: non-negative integer seed.
        **kwargs: further keyword arguments of :func:`make_scenes` (not ``offset``).

    Returns:
        An iterator of :class:`SceneBatch` objects (``batch_size`` and ``num_batches`` are
        checked at once, the other arguments when the first batch is made).

    Example:
        >>> it = batches(4, num_batches=2, height=32, width=48, seed=1)
        >>> [tuple(b.depth.shape) for b in it]
        [(4, 1, 32, 48), (4, 1, 32, 48)]
    """
    _check_size("batch_size", batch_size)
    if num_batches is not None:
        _check_size("num_batches", num_batches)
    if "offset" in kwargs:
        raise TypeError("batches() sets offset itself; pass a different seed for a different stream")
    return _stream(batch_size, num_batches, height, width, seed, kwargs)


def _stream(
    batch_size: int, num_batches: Optional[int], height: int, width: int, seed: int, kwargs: Dict[str, Any]
) -> Iterator[SceneBatch]:
    j = 0
    while num_batches is None or j < num_batches:
        yield make_scenes(batch_size, height, width, seed, offset=j * batch_size, **kwargs)
        j += 1
