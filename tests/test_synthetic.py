"""Tests of the procedural scene generator (``depthloss.synthetic``).

Checks the documented contract: shapes, dtypes and devices; bit-exact determinism and
independence from batching; metric z-depth with "no return" (0, invalid) for sky and for
surfaces beyond ``max_depth``; LiDAR-like sparse depth that is an exact, row-structured
subset of the dense depth at the requested density; near-field objects; an image whose
contrast fades with distance; argument validation. No test measures time.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from depthloss.synthetic import SceneBatch, batches, intrinsics, lidar_pattern, make_scenes, sparsify

FIELDS = SceneBatch._fields


@pytest.fixture(scope="module")
def scenes() -> SceneBatch:
    """32 default scenes (96x320), shared by the read-only tests."""
    return make_scenes(32, seed=0)


def _equal(a: SceneBatch, b: SceneBatch) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


# --- shapes, dtypes, devices --------------------------------------------------------------


def test_shapes_and_dtypes(scenes: SceneBatch) -> None:
    n, h, w = 32, 96, 320
    assert isinstance(scenes, SceneBatch)
    assert scenes.image.shape == (n, 3, h, w)
    for name in ("depth", "valid", "sparse_depth", "sparse_valid"):
        assert getattr(scenes, name).shape == (n, 1, h, w), name
    assert scenes.intrinsics.shape == (n, 3, 3)
    for name in ("image", "depth", "sparse_depth", "intrinsics"):
        assert getattr(scenes, name).dtype == torch.float32, name
    assert scenes.valid.dtype == torch.bool and scenes.sparse_valid.dtype == torch.bool
    assert all(t.device.type == "cpu" for t in scenes)


@pytest.mark.parametrize("size", [(64, 64), (256, 512), (1, 1), (5, 3), (40, 7)])
def test_other_sizes(size: tuple) -> None:
    h, w = size
    b = make_scenes(2, h, w, seed=3)
    assert b.image.shape == (2, 3, h, w) and b.depth.shape == (2, 1, h, w)
    assert torch.isfinite(b.image).all() and torch.isfinite(b.depth).all()
    assert ((b.image >= 0) & (b.image <= 1)).all()
    assert (b.depth[b.valid] > 0).all() and (b.depth[~b.valid] == 0).all()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_dtypes(dtype: torch.dtype) -> None:
    b = make_scenes(2, 32, 48, seed=1, dtype=dtype)
    for name in ("image", "depth", "sparse_depth", "intrinsics"):
        assert getattr(b, name).dtype == dtype, name
    assert b.valid.dtype == torch.bool and b.sparse_valid.dtype == torch.bool
    ref = make_scenes(2, 32, 48, seed=1)
    # same scene: float64 renders in float64, half precision is rounded float32
    assert (b.valid != ref.valid).float().mean() < 1e-3
    both = b.valid & ref.valid
    rel = (b.depth.double() - ref.depth.double()).abs() / ref.depth.double().clamp_min(1e-6)
    assert rel[both].max() < (1e-2 if dtype != torch.float64 else 1e-4)


def test_device_argument() -> None:
    b = make_scenes(1, 16, 16, device=torch.device("cpu"))
    assert all(t.device.type == "cpu" for t in b)
    assert _equal(b, make_scenes(1, 16, 16, device="cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    gpu = make_scenes(2, 32, 48, seed=4, device="cuda")
    cpu = make_scenes(2, 32, 48, seed=4)
    assert all(t.device.type == "cuda" for t in gpu)
    assert (gpu.valid.cpu() != cpu.valid).float().mean() < 1e-3


def test_intrinsics() -> None:
    k = intrinsics(2, 96, 320)
    assert k.shape == (2, 3, 3)
    f = 0.58 * 320
    expected = torch.tensor([[f, 0.0, 159.5], [0.0, f, 47.5], [0.0, 0.0, 1.0]])
    assert torch.allclose(k[1], expected)
    assert torch.equal(make_scenes(2, 96, 320).intrinsics, k)
    assert intrinsics(1, 64, 32)[0, 0, 0] == pytest.approx(0.58 * 64)  # uses max(H, W)


def test_scenebatch_to() -> None:
    b = make_scenes(1, 8, 8).to(torch.float64)
    assert b.depth.dtype == torch.float64 and b.image.dtype == torch.float64
    assert b.valid.dtype == torch.bool and b.sparse_valid.dtype == torch.bool


# --- determinism --------------------------------------------------------------------------


def test_same_seed_bit_identical() -> None:
    a = make_scenes(4, 48, 64, seed=7)
    b = make_scenes(4, 48, 64, seed=7)
    assert _equal(a, b)


def test_different_seeds_differ() -> None:
    a = make_scenes(4, 48, 64, seed=0)
    b = make_scenes(4, 48, 64, seed=1)
    for name in ("image", "depth", "valid", "sparse_valid"):
        assert not torch.equal(getattr(a, name), getattr(b, name)), name
    # scenes within a batch differ from each other too
    assert not torch.equal(a.depth[0], a.depth[1])


def test_scene_independent_of_batch() -> None:
    big = make_scenes(6, 48, 64, seed=2)
    assert _equal(make_scenes(2, 48, 64, seed=2), SceneBatch(*(t[:2] for t in big)))
    assert _equal(make_scenes(3, 48, 64, seed=2, offset=3), SceneBatch(*(t[3:] for t in big)))


def test_independent_of_thread_count() -> None:
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = make_scenes(3, 48, 64, seed=9)
        torch.set_num_threads(2)
        b = make_scenes(3, 48, 64, seed=9)
    finally:
        torch.set_num_threads(old)
    assert _equal(a, b)
    assert torch.get_num_threads() == old  # make_scenes restores the caller's setting


def test_global_rng_untouched() -> None:
    state = torch.get_rng_state()
    make_scenes(2, 16, 24, seed=5)
    sparsify(torch.ones(1, 1, 8, 8))
    lidar_pattern(1, 8, 8)
    assert torch.equal(state, torch.get_rng_state())


def test_lidar_fraction_leaves_scene_unchanged() -> None:
    a = make_scenes(3, 48, 64, seed=4, lidar_fraction=0.05)
    b = make_scenes(3, 48, 64, seed=4, lidar_fraction=0.3)
    for name in ("image", "depth", "valid"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.sparse_valid.sum() < b.sparse_valid.sum()


# --- dense depth --------------------------------------------------------------------------


def test_depth_valid_and_capped(scenes: SceneBatch) -> None:
    d, v = scenes.depth, scenes.valid
    assert torch.isfinite(d).all()
    assert (d[v] > 0).all() and (d[v] <= 80.0).all()
    assert (d[~v] == 0).all()
    frac = v.float().mean(dim=(1, 2, 3))
    assert (frac > 0.2).all() and (frac < 1).any()  # sky exists, but scenes are not empty
    # the sky is at the top: the top row is invalid more often than the bottom row
    assert (~v[:, 0, 0]).float().mean() > (~v[:, 0, -1]).float().mean()


def test_max_depth() -> None:
    near = make_scenes(8, 64, 192, seed=3, max_depth=15.0)
    assert (near.depth[near.valid] <= 15.0).all()
    # the ground continues beyond the range: depth reaches the cap, then stops
    # (unless a close object fills the view)
    assert (near.depth.amax(dim=(1, 2, 3)) > 13.0).float().mean() >= 0.75
    far = make_scenes(8, 64, 192, seed=3)
    assert (far.depth.amax(dim=(1, 2, 3)) > 60.0).float().mean() >= 0.75


def test_depth_is_z_depth_not_ray_length() -> None:
    """1/z of a plane is affine in pixel coordinates; 1/(ray length) is not.

    Along the bottom image rows (ground, box faces) the second difference of 1/depth
    vanishes except at object edges and on spheres.
    """
    b = make_scenes(8, 64, 192, seed=11, near_prob=0.0, dtype=torch.float64)
    rows = b.depth[:, 0, -4:, :]
    ok = b.valid[:, 0, -4:, :]
    inv = 1.0 / rows.clamp_min(1e-9)
    second = (inv[..., 2:] - 2 * inv[..., 1:-1] + inv[..., :-2]).abs()
    usable = ok[..., 2:] & ok[..., 1:-1] & ok[..., :-2]
    planar = (second < 1e-9) & usable
    assert planar.sum() >= 0.8 * usable.sum()
    # ray length, for contrast, is measurably curved on the same pixels
    k = b.intrinsics[0]
    u = torch.arange(192, dtype=torch.float64)
    v = torch.arange(60, 64, dtype=torch.float64)
    x, y = (u - k[0, 2]) / k[0, 0], (v[:, None] - k[1, 2]) / k[1, 1]
    ray = rows * torch.sqrt(1 + x**2 + y**2)
    inv_r = 1.0 / ray.clamp_min(1e-9)
    second_r = (inv_r[..., 2:] - 2 * inv_r[..., 1:-1] + inv_r[..., :-2]).abs()
    assert ((second_r < 1e-9) & usable).sum() < 0.5 * usable.sum()


def test_ground_plane_geometry() -> None:
    """Back-projected bottom rows (ground, when no object is in the way) lie on a plane
    1.5-1.7 m from the camera: the documented camera height, through the intrinsics."""
    b = make_scenes(16, 64, 192, seed=12, near_prob=0.0, dtype=torch.float64)
    k_inv = torch.linalg.inv(b.intrinsics[0])
    f64 = torch.float64
    v, u = torch.meshgrid(torch.arange(60.0, 64.0, dtype=f64), torch.arange(192.0, dtype=f64), indexing="ij")
    rays = k_inv @ torch.stack([u.flatten(), v.flatten(), torch.ones(4 * 192, dtype=torch.float64)])
    clean = 0
    for i in range(16):
        depth = b.depth[i, 0, 60:].flatten()
        if not b.valid[i, 0, 60:].all():
            continue
        pts = rays * depth  # (3, N) camera coordinates
        centre = pts.mean(1, keepdim=True)
        _, _, vh = torch.linalg.svd((pts - centre).T, full_matrices=False)
        residual = ((pts - centre).T @ vh[-1]).abs().max()
        if residual > 1e-6:  # an object in the bottom rows: not a single plane
            continue
        clean += 1
        assert 1.5 - 1e-6 <= float((vh[-1] @ centre).abs()) <= 1.7 + 1e-6
    assert clean >= 4


# --- sparse depth -------------------------------------------------------------------------


def test_sparse_is_exact_subset(scenes: SceneBatch) -> None:
    sv, v = scenes.sparse_valid, scenes.valid
    assert not (sv & ~v).any()
    assert torch.equal(scenes.sparse_depth[sv], scenes.depth[sv])
    assert (scenes.sparse_depth[~sv] == 0).all()


def test_sparse_fraction_default(scenes: SceneBatch) -> None:
    frac = scenes.sparse_valid.float().mean(dim=(1, 2, 3))
    assert (frac >= 0.05).all() and (frac <= 0.30).all()
    ratio = scenes.sparse_valid.sum() / scenes.valid.sum()
    assert abs(float(ratio) - 0.15) < 0.015


@pytest.mark.parametrize("fraction", [0.03, 0.1, 0.25, 0.6, 1.0])
def test_sparse_fraction_tracks_request(fraction: float) -> None:
    b = make_scenes(8, 64, 160, seed=6, lidar_fraction=fraction)
    ratio = float(b.sparse_valid.sum() / b.valid.sum())
    assert ratio == pytest.approx(fraction, rel=0.15)
    pattern = lidar_pattern(8, 64, 160, fraction=fraction, seed=6)
    assert float(pattern.float().mean()) == pytest.approx(fraction, rel=0.1)


def test_lidar_rows(scenes: SceneBatch) -> None:
    """Returns concentrate on about H / k scan lines (k = 6 rows for the default 0.15)."""
    h = scenes.depth.shape[2]
    beams = math.ceil(h / 6)
    per_row = lidar_pattern(32, seed=0)[:, 0].sum(dim=2).float()  # (B, H)
    assert ((per_row > 0).sum(1) <= 2 * beams).all()
    top = per_row.sort(dim=1, descending=True).values[:, : beams + 2].sum(1) / per_row.sum(1)
    assert (top > 0.85).all()
    # the pattern is the one the scenes use
    assert torch.equal(scenes.sparse_valid, lidar_pattern(32, seed=0) & scenes.valid)
    # along a scan line most pixels carry a point (per-point dropout is 10%)
    full_rows = per_row.sort(dim=1, descending=True).values[:, : beams - 2]
    assert (full_rows.mean(1) > 0.75 * scenes.depth.shape[3]).all()


def test_sparsify_reproduces_scenes() -> None:
    b = make_scenes(3, 48, 64, seed=8, lidar_fraction=0.2)
    depth, mask = sparsify(b.depth, b.valid, 0.2, seed=8)
    assert torch.equal(depth, b.sparse_depth) and torch.equal(mask, b.sparse_valid)
    # default validity: finite and positive; (B, H, W) maps work too
    depth3, mask3 = sparsify(b.depth[:, 0], fraction=0.2, seed=8)
    assert torch.equal(mask3, b.sparse_valid[:, 0]) and torch.equal(depth3, b.sparse_depth[:, 0])


def test_sparsify_other_inputs() -> None:
    d = torch.full((2, 1, 20, 30), 3.0, dtype=torch.float64)
    d[:, :, :5] = float("nan")
    s, m = sparsify(d, fraction=0.3, seed=1)
    assert s.dtype == torch.float64 and m.dtype == torch.bool and s.shape == d.shape
    assert not m[:, :, :5].any() and (s[:, :, :5] == 0).all()
    assert (s[m] == 3.0).all()


# --- near field ---------------------------------------------------------------------------


def test_near_field_objects() -> None:
    b = make_scenes(32, 64, 192, seed=13, near_prob=1.0)
    nearest = torch.where(b.valid, b.depth, torch.inf).amin(dim=(1, 2, 3))
    assert (nearest >= 0.3).all()  # nothing closer than near_range[0]
    assert (nearest < 1.0).float().mean() >= 0.8
    # a near object covers a visible area, not a pixel or two
    near_px = ((b.depth < 1.0) & b.valid).sum(dim=(1, 2, 3))
    assert (near_px > 50).float().mean() >= 0.7


def test_objects_stand_beyond_the_nearest_visible_ground() -> None:
    """Without a near-field post nothing is closer than the ground in the bottom image row,
    so every object's ground contact is in view (the height-in-the-image cue)."""
    h, w = 64, 128
    b = make_scenes(32, h, w, seed=21, near_prob=0.0)
    f = b.intrinsics[0, 0, 0].item()
    dy = (h - 1 - b.intrinsics[0, 1, 2].item()) / f  # bottom row's ray slope
    pitch, roll = math.radians(2.5), math.radians(1.0)
    # the nearest ground any camera of the documented range sees (lowest, most pitched, rolled)
    slope = (dy + (w / 2 / f) * math.sin(roll)) * math.cos(pitch) + math.sin(pitch)
    nearest_ground = 1.5 / slope
    nearest = torch.where(b.valid, b.depth, torch.inf).amin(dim=(1, 2, 3))
    assert (nearest >= 0.95 * nearest_ground).all(), (nearest.min(), nearest_ground)


def test_near_post_width_tells_its_distance() -> None:
    """The near-field post has a known width (15 cm): its apparent width is f·0.15/z."""
    b = make_scenes(24, 64, 128, seed=22, near_prob=1.0)
    f = b.intrinsics[0, 0, 0].item()
    checked = 0
    for i in range(b.depth.shape[0]):
        row = b.depth[i, 0, 32]  # the middle row crosses the post
        near = (row > 0) & (row < 1.25)
        if near.sum() < 4:
            continue
        z = row[near].min().item()
        expected = f * 0.15 / z
        assert 0.75 * expected <= near.sum().item() <= 1.3 * expected + 2, (i, near.sum().item(), expected)
        checked += 1
    assert checked >= 18


def test_near_prob_zero_and_default(scenes: SceneBatch) -> None:
    none = make_scenes(32, 64, 192, seed=13, near_prob=0.0)
    assert ((none.depth < 1.25) & none.valid).sum() == 0
    nearest = torch.where(scenes.valid, scenes.depth, torch.inf).amin(dim=(1, 2, 3))
    share = float((nearest < 1.0).float().mean())
    assert 0.25 <= share <= 0.75  # default near_prob = 0.5


def test_near_range() -> None:
    b = make_scenes(16, 64, 96, seed=2, near_prob=1.0, near_range=(0.5, 0.6))
    nearest = torch.where(b.valid, b.depth, torch.inf).amin(dim=(1, 2, 3))
    assert (nearest >= 0.5).all()
    assert (nearest < 1.0).float().mean() >= 0.7


# --- image --------------------------------------------------------------------------------


def test_image_range_and_variation(scenes: SceneBatch) -> None:
    img = scenes.image
    assert torch.isfinite(img).all() and (img >= 0).all() and (img <= 1).all()
    assert (img.std(dim=(1, 2, 3)) > 0.05).all()
    # objects, ground and sky are not all the same colour
    assert (img.amax(dim=(2, 3)) - img.amin(dim=(2, 3)) > 0.3).all()


def test_image_contrast_fades_with_distance(scenes: SceneBatch) -> None:
    """Fog and texture fading: far surfaces (> 40 m) show less contrast than near ones (< 10 m)."""
    lum = scenes.image.mean(dim=1, keepdim=True)
    ratios = []
    for i in range(lum.shape[0]):
        d, v = scenes.depth[i], scenes.valid[i]
        far, near = v & (d > 40), v & (d < 10)
        if far.sum() >= 50 and near.sum() >= 50:
            ratios.append(float(lum[i][far].std() / lum[i][near].std()))
    assert len(ratios) >= 16
    assert float(np.mean(np.array(ratios) < 1.0)) >= 0.9 and float(np.median(ratios)) < 0.7


def test_sky_is_bluish(scenes: SceneBatch) -> None:
    """Invalid pixels in the top row are sky (or haze): blue exceeds red there."""
    top = ~scenes.valid[:, 0, 0, :]  # (B, W)
    red, blue = scenes.image[:, 0, 0, :], scenes.image[:, 2, 0, :]
    assert top.sum() > 0
    assert ((blue - red)[top] > 0).float().mean() > 0.95


# --- batches ------------------------------------------------------------------------------


def test_batches_stream() -> None:
    got = list(batches(3, num_batches=2, height=24, width=40, seed=5, near_prob=0.3))
    assert len(got) == 2
    whole = make_scenes(6, 24, 40, seed=5, near_prob=0.3)
    for j, b in enumerate(got):
        assert _equal(b, SceneBatch(*(t[3 * j : 3 * j + 3] for t in whole)))
    endless = batches(2, height=8, width=8)
    assert next(endless).depth.shape == (2, 1, 8, 8) and next(endless).depth.shape == (2, 1, 8, 8)


# --- argument validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"n": 0}, ValueError, "n"),
        ({"n": 2.0}, TypeError, "n"),
        ({"n": True}, TypeError, "n"),
        ({"height": 0}, ValueError, "height"),
        ({"width": -3}, ValueError, "width"),
        ({"width": 3.5}, TypeError, "width"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": "0"}, TypeError, "seed"),
        ({"offset": -1}, ValueError, "offset"),
        ({"near_prob": 1.5}, ValueError, "near_prob"),
        ({"near_prob": -0.1}, ValueError, "near_prob"),
        ({"near_prob": float("nan")}, ValueError, "near_prob"),
        ({"near_range": (1.0, 0.5)}, ValueError, "near_range"),
        ({"near_range": (0.0, 0.5)}, ValueError, "near_range"),
        ({"near_range": (0.3, 3.0)}, ValueError, "near_range"),
        ({"near_range": 0.5}, TypeError, "near_range"),
        ({"lidar_fraction": 0.0}, ValueError, "lidar_fraction"),
        ({"lidar_fraction": 1.5}, ValueError, "lidar_fraction"),
        ({"lidar_fraction": "0.1"}, TypeError, "lidar_fraction"),
        ({"max_depth": 0.0}, ValueError, "max_depth"),
        ({"max_depth": float("inf")}, ValueError, "max_depth"),
        ({"dtype": torch.int32}, TypeError, "dtype"),
        ({"dtype": "float32"}, TypeError, "dtype"),
        ({"device": 3}, TypeError, "device"),
        ({"device": "nonsense"}, ValueError, "device"),
    ],
)
def test_make_scenes_validation(kwargs: dict, error: type, name: str) -> None:
    args = {"n": 1, "height": 8, "width": 8}
    args.update(kwargs)
    with pytest.raises(error, match=name):
        make_scenes(**args)


def test_helper_validation() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        batches(0)  # checked at once, before iterating
    with pytest.raises(ValueError, match="num_batches"):
        batches(2, num_batches=0)
    with pytest.raises(TypeError, match="offset"):
        batches(2, offset=4)
    with pytest.raises(ValueError, match="fraction"):
        lidar_pattern(1, 8, 8, fraction=0.0)
    with pytest.raises(ValueError, match="n"):
        intrinsics(0)
    with pytest.raises(TypeError, match="depth"):
        sparsify(torch.ones(1, 1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="depth"):
        sparsify(torch.ones(1, 2, 4, 4))
    with pytest.raises(TypeError, match="valid"):
        sparsify(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 4, 4))
    with pytest.raises(ValueError, match="valid"):
        sparsify(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="fraction"):
        sparsify(torch.ones(1, 1, 4, 4), fraction=2.0)


# --- speed smoke (no timing assertion) ----------------------------------------------------


def test_generates_many_scenes() -> None:
    b = make_scenes(64, seed=21)
    assert b.depth.shape == (64, 1, 96, 320)
    assert b.valid.any(dim=(1, 2, 3)).all()
