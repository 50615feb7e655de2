"""flexecutor's video analytics pipeline on synthetic videos: decode -> keyframes -> sharpen
-> classify.

flexecutor splits videos into chunks, picks the brightest frame of each chunk, sharpens it
and runs an object detector on it. Here the videos are generated (so nothing is downloaded and
the ground truth is known): each chunk of ``chunk`` frames shows one moving bright object, a
square, a disk or a cross, over a gradient background with noise and a per-frame flicker,
drawn from ``default_rng([seed, video, chunk])``.

* ``decode`` (input): render this task's videos and cut them into chunks; chunk ``g`` (the
  global chunk number) goes to bucket ``g % R`` of the ``R`` extract tasks (a shuffle, so the
  extract stage's parallelism is free of the decode stage's).
* ``extract`` (bucket route): every ``stride``-th frame's pixel sum; keep the brightest.
* ``sharpen`` (split route): the 3x3 sharpening kernel of flexecutor's example, in integers.
* ``classify`` (split route): threshold, drop speckles, and tell the shape by how much of
  its bounding box it fills.

All pixel arithmetic is on integers, so every frame is bit-identical for any parallelism; the
summary carries a checksum of the sharpened keyframes to prove it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads._base import Param, ParamValue, Size, WorkloadError, split_even
from workloads._pipeline import Edge, Pipeline, Stage, TaskContext

SHAPES = ("square", "disk", "cross")


@dataclass(frozen=True)
class Videos:
    """A ``decode`` task's videos ``[first, stop)`` and how to render them."""

    seed: int
    first: int
    stop: int
    frames: int
    chunk: int
    resolution: int


@dataclass(frozen=True)
class Clip:
    """Frames of one chunk (``(n, res, res)`` uint8) and the shape it shows."""

    video: int
    chunk: int
    label: int
    frames: np.ndarray


@dataclass(frozen=True)
class Keyframe:
    """The chosen frame of one chunk (``(res, res)`` uint8)."""

    video: int
    chunk: int
    label: int
    frame: np.ndarray


@dataclass(frozen=True)
class Detection:
    """One classified keyframe and a checksum of its pixels."""

    video: int
    chunk: int
    label: int
    predicted: int
    crc: int


def render_clip(seed: int, video: int, chunk: int, frames: int, res: int) -> Clip:
    """Chunk ``chunk`` of video ``video``: one shape moving over a noisy gradient.

    >>> clip = render_clip(0, 0, 0, 4, 48)
    >>> clip.frames.shape, clip.frames.dtype.name, SHAPES[clip.label] in SHAPES
    ((4, 48, 48), 'uint8', True)
    """
    rng = np.random.default_rng([seed, video, chunk])
    label = int(rng.integers(len(SHAPES)))
    r = int(rng.integers(max(2, res // 10), max(3, res // 5) + 1))  # half-size of the shape
    lo, hi = r + 1, res - r - 2
    start = rng.integers(lo, hi + 1, size=2)
    end = rng.integers(lo, hi + 1, size=2)
    level = int(rng.integers(215, 256))
    yy, xx = np.mgrid[:res, :res]
    background = (30 + 60 * xx / max(1, res - 1) + 10 * yy / max(1, res - 1)).astype(np.int32)
    out = np.empty((frames, res, res), dtype=np.uint8)
    for f in range(frames):
        t = f / max(1, frames - 1)
        cy, cx = np.rint(start + (end - start) * t).astype(int)
        mask = shape_mask(label, np.abs(yy - cy), np.abs(xx - cx), r)
        image = np.where(mask, level, background) + rng.integers(-2, 3, size=(res, res))
        gain = int(rng.integers(70, 101))  # flicker, in percent
        out[f] = np.clip(image * gain // 100, 0, 255).astype(np.uint8)
    return Clip(video, chunk, label, out)


def shape_mask(label: int, dy: np.ndarray, dx: np.ndarray, r: int) -> np.ndarray:
    """Pixels of shape ``label`` of half-size ``r``, given distances from its centre."""
    if label == 0:
        return (dy <= r) & (dx <= r)
    if label == 1:
        return dy * dy + dx * dx <= r * r
    arm = max(1, r // 3)
    return ((dy <= r) & (dx <= arm)) | ((dx <= r) & (dy <= arm))


def source(stage: str, tasks: int, size: Size, seed: int,
           params: dict[str, ParamValue]) -> list[Videos]:
    """Contiguous runs of videos for the decode tasks."""
    frames, chunk, res = (int(params[k]) for k in ("frames", "chunk", "resolution"))  # type: ignore[arg-type]
    return [Videos(seed, a, b, frames, chunk, res) for a, b in split_even(int(size), tasks)]


def decode(ctx: TaskContext, inputs: dict[str, list[Any]]) -> list[list[Clip]]:
    """Render this task's videos chunk by chunk and deal the chunks into ``fanout`` buckets."""
    src: Videos = ctx.source
    per_video = -(-src.frames // src.chunk)
    buckets: list[list[Clip]] = [[] for _ in range(ctx.fanout)]
    for v in range(src.first, src.stop):
        for c in range(per_video):
            n = min(src.chunk, src.frames - c * src.chunk)
            clip = render_clip(src.seed, v, c, n, src.resolution)
            buckets[(v * per_video + c) % ctx.fanout].append(clip)
    return buckets


def extract(ctx: TaskContext, inputs: dict[str, list[Any]]) -> list[Keyframe]:
    """The brightest of every ``stride``-th frame of each chunk (first one on ties)."""
    stride = int(ctx.params["stride"])
    clips = sorted((c for part in inputs["decode"] for c in part), key=lambda c: (c.video, c.chunk))
    keyframes = []
    for clip in clips:
        sampled = clip.frames[::stride]
        best = int(np.argmax(sampled.reshape(len(sampled), -1).sum(axis=1, dtype=np.int64)))
        keyframes.append(Keyframe(clip.video, clip.chunk, clip.label, sampled[best]))
    return keyframes


def sharpen(ctx: TaskContext, inputs: dict[str, list[Any]]) -> list[Keyframe]:
    """Apply ``[[-1,-1,-1],[-1,9,-1],[-1,-1,-1]]`` with edge padding, clipped to 0..255."""
    out = []
    for parts in inputs["extract"]:
        for kf in parts:
            image = kf.frame.astype(np.int32)
            padded = np.pad(image, 1, mode="edge")
            h, w = image.shape
            neighbours = sum(padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
                             for dy in (-1, 0, 1) for dx in (-1, 0, 1))
            sharp = np.clip(10 * image - neighbours, 0, 255).astype(np.uint8)
            out.append(Keyframe(kf.video, kf.chunk, kf.label, sharp))
    return out


def shape_of(frame: np.ndarray) -> int:
    """Index in :data:`SHAPES` of the bright object: the ideal shape that overlaps it best.

    Threshold halfway between the background (median) and the object (99th percentile), drop
    speckles of noise (few bright neighbours), then compare the object's bounding box with
    each shape drawn at that size (intersection over union), which works at any resolution.
    """
    image = frame.astype(np.int32)
    threshold = (int(np.median(image)) + int(np.percentile(image, 99))) // 2
    mask = image > threshold
    padded = np.pad(mask, 1).astype(np.int8)
    h, w = mask.shape
    around = sum(padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
                 for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)
    mask &= around >= 3
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return 2
    crop = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    r = (max(crop.shape) - 1) // 2
    grid = np.abs(np.arange(-r, r + 1))
    side = 2 * r + 1
    best, best_iou = 0, -1.0
    for label in range(len(SHAPES)):
        ideal = shape_mask(label, grid[:, None], grid[None, :], r)
        a = np.zeros((max(side, crop.shape[0]), max(side, crop.shape[1])), dtype=bool)
        b = a.copy()
        a[:crop.shape[0], :crop.shape[1]] = crop
        b[:side, :side] = ideal
        iou = (a & b).sum() / max(1, (a | b).sum())
        if iou > best_iou:
            best, best_iou = label, iou
    return best


def classify(ctx: TaskContext, inputs: dict[str, list[Any]]) -> list[Detection]:
    """Classify each sharpened keyframe; keep a checksum of its pixels."""
    return [Detection(kf.video, kf.chunk, kf.label, shape_of(kf.frame),
                      zlib.crc32(kf.frame.tobytes()))
            for parts in inputs["sharpen"] for kf in parts]


def summary(outputs: dict[str, list[Any]]) -> dict[str, Any]:
    """Keyframes, classification accuracy, shapes found and a checksum of all keyframes."""
    found = [d for part in outputs["classify"] for d in part]
    correct = sum(d.label == d.predicted for d in found)
    out: dict[str, Any] = {
        "keyframes": len(found),
        "correct": correct,
        "accuracy": round(correct / len(found), 6) if found else 0.0,
    }
    for i, plural in enumerate(("squares", "disks", "crosses")):
        out[plural] = sum(d.predicted == i for d in found)
    out["checksum"] = sum(d.crc for d in found) % 2**32
    return out


def prepare(size: Size | None, params: dict[str, ParamValue]) -> Size:
    """Check the parameters that depend on each other."""
    if int(params["chunk"]) > int(params["frames"]):  # type: ignore[arg-type]
        raise WorkloadError(f"parameter 'chunk' ({params['chunk']}) must be <= frames "
                            f"({params['frames']})")
    return PIPELINE.default_size if size is None else size


PIPELINE = Pipeline(
    name="video",
    description="flexecutor's video analytics on synthetic videos: decode, keyframes, "
                "sharpen, classify shapes",
    size_meaning="videos",
    default_size=160,
    params=(
        Param("frames", int, 120, "frames per video", minimum=1),
        Param("chunk", int, 12, "frames per chunk (one keyframe each)", minimum=1),
        Param("resolution", int, 96, "frame width and height in pixels", minimum=16),
        Param("stride", int, 2, "extract looks at every stride-th frame", minimum=1),
    ),
    stages=(
        Stage("decode", decode, (), 2, None, "render videos, cut them into chunks"),
        Stage("extract", extract, (Edge("decode", "bucket"),), 2, None,
              "pick the brightest sampled frame of each chunk"),
        Stage("sharpen", sharpen, (Edge("extract", "split"),), 2, None,
              "3x3 sharpening filter on each keyframe"),
        Stage("classify", classify, (Edge("sharpen", "split"),), 2, None,
              "tell the shape in each keyframe"),
    ),
    source=source,
    summary=summary,
    prepare=prepare,
)
