"""The ML pipeline of Jolteon and flexecutor: PCA -> parallel training -> aggregate -> test.

Data are scikit-learn's bundled 8x8 handwritten digits (1,797 images, shipped with sklearn, so
nothing is downloaded), enlarged to ``size`` samples by seeded copies: sample ``s`` is digit
``s % 1797`` shifted by up to one pixel with Gaussian noise. Samples come in blocks of
:data:`BLOCK`, each drawn from ``default_rng([seed, block])``, which also marks its test and
validation rows, so every stage can regenerate exactly the rows it needs.

* ``pca`` (1 task): fit a PCA on the training rows, project them.
* ``train``: ``n_models`` random forests, each with its own seed, feature and bagging
  fraction (as Jolteon's LightGBM trainers); the stage's tasks share the models, so the
  models never depend on parallelism.
* ``aggregate`` (1 task): rank the models by validation accuracy and keep the best ``keep``.
* ``test``: each task regenerates its blocks' test rows, projects them and scores the
  ensemble; accuracy is an exact ratio of integer counts.

Projection and prediction work block by block, so even floating-point results do not depend
on how blocks are grouped into tasks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads._base import Param, ParamValue, Size, WorkloadError, split_blocks, split_even
from workloads._pipeline import Edge, Pipeline, Stage, TaskContext

BLOCK = 512
"""Samples per generation block: the unit of work of ``test``, and of the seeded data."""

VALIDATION = 0.1
"""Share of training rows held out so ``aggregate`` can rank the models."""


@dataclass(frozen=True)
class Source:
    """The ``pca`` task's input: generate blocks ``[0, blocks)`` of ``size`` samples."""

    size: int
    seed: int
    blocks: int


@dataclass(frozen=True)
class Projection:
    """A fitted PCA and the projected training rows (split into fit and validation rows)."""

    mean: np.ndarray
    components: np.ndarray  # (64, k)
    x_fit: np.ndarray
    y_fit: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


@dataclass(frozen=True)
class Model:
    """One trained model and how many validation rows it classifies correctly."""

    index: int
    estimator: Any
    val_correct: int


@dataclass(frozen=True)
class Ensemble:
    """What ``test`` needs: the PCA and the chosen models in a fixed order."""

    mean: np.ndarray
    components: np.ndarray
    models: tuple[Model, ...]
    val_rows: int


@functools.cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 bundled digits as (8, 8) float images and labels (loaded once per process)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype(np.float64), digits.target.astype(np.int64)


def make_block(block: int, size: int, seed: int,
               test_fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Block ``block``'s samples: ``(x (n, 64), y, is_test, is_validation)``.

    >>> x, y, test, val = make_block(0, 1000, 0, 0.25)
    >>> x.shape, bool(test.any()), bool((test & val).any())
    ((512, 64), True, False)
    """
    images, labels = _digits()
    start = block * BLOCK
    n = max(0, min(BLOCK, size - start))
    rng = np.random.default_rng([seed, block])
    base = (start + np.arange(n)) % len(labels)
    shifts = rng.integers(-1, 2, size=(n, 2))
    noise = rng.normal(0.0, 2.0, size=(n, 8, 8))
    u = rng.random(n)
    x = np.empty((n, 8, 8))
    for i in range(n):  # a shift of one image; cheaper than a general warp
        x[i] = np.roll(images[base[i]], tuple(shifts[i]), axis=(0, 1))
    x = np.clip(x + noise, 0.0, 16.0).reshape(n, 64)
    is_test = u < test_fraction
    is_val = ~is_test & (u < test_fraction + (1 - test_fraction) * VALIDATION)
    return x, labels[base], is_test, is_val


def _blocks(size: Size) -> int:
    return -(-int(size) // BLOCK)


def source(stage: str, tasks: int, size: Size, seed: int,
           params: dict[str, ParamValue]) -> list[Source]:
    """Only ``pca`` reads the job input: all blocks, in one task."""
    return [Source(int(size), seed, _blocks(size)) for _ in range(tasks)]


def pca(ctx: TaskContext, inputs: dict[str, list[Any]]) -> Projection:
    """Fit a PCA (eigenvectors of the covariance) on the training rows and project them."""
    src: Source = ctx.source
    fraction = float(ctx.params["test_fraction"])
    parts = [make_block(b, src.size, src.seed, fraction) for b in range(src.blocks)]
    train = np.concatenate([x[~t] for x, _, t, _ in parts])
    if len(train) < 2:
        raise WorkloadError(f"ml: size {src.size} leaves fewer than 2 training samples")
    mean = train.mean(axis=0)
    centred = train - mean
    values, vectors = np.linalg.eigh(centred.T @ centred / (len(train) - 1))
    components = vectors[:, ::-1][:, : int(ctx.params["components"])]
    # eigenvectors have no sign; fix one so every machine's LAPACK gives the same projection
    signs = np.sign(components[np.abs(components).argmax(axis=0), range(components.shape[1])])
    components = components * np.where(signs == 0, 1, signs)
    fit_x, fit_y, val_x, val_y = [], [], [], []
    for x, y, t, v in parts:
        z = (x - mean) @ components
        fit_x.append(z[~t & ~v])
        fit_y.append(y[~t & ~v])
        val_x.append(z[v])
        val_y.append(y[v])
    return Projection(mean, components, np.concatenate(fit_x), np.concatenate(fit_y),
                      np.concatenate(val_x), np.concatenate(val_y))


def train(ctx: TaskContext, inputs: dict[str, list[Any]]) -> list[Model]:
    """Train this task's share of the ``n_models`` models; each model's seed is its index."""
    from sklearn.ensemble import RandomForestClassifier

    (proj,) = inputs["pca"]
    start, stop = split_even(int(ctx.params["n_models"]), ctx.tasks)[ctx.index]
    models = []
    for m in range(start, stop):
        rng = np.random.default_rng([ctx.seed, 1, m])
        estimator = RandomForestClassifier(
            n_estimators=int(ctx.params["trees"]),
            max_features=float(rng.uniform(0.5, 1.0)),
            max_samples=float(rng.uniform(0.5, 1.0)),
            min_samples_leaf=2,
            random_state=int(rng.integers(2**31)),
            n_jobs=1,
        ).fit(proj.x_fit, proj.y_fit)
        correct = int((estimator.predict(proj.x_val) == proj.y_val).sum()) if len(proj.y_val) else 0
        models.append(Model(m, estimator, correct))
    return models


def aggregate(ctx: TaskContext, inputs: dict[str, list[Any]]) -> Ensemble:
    """Keep the ``keep`` models with the best validation accuracy (ties: lower index)."""
    (proj,) = inputs["pca"]
    models = sorted((m for part in inputs["train"] for m in part), key=lambda m: m.index)
    expected = int(ctx.params["n_models"])
    if [m.index for m in models] != list(range(expected)):
        raise WorkloadError(f"ml aggregate got models {[m.index for m in models]}, "
                            f"expected 0..{expected - 1}")
    keep = int(ctx.params["keep"]) or expected
    ranked = sorted(models, key=lambda m: (-m.val_correct, m.index))[:keep]
    chosen = tuple(sorted(ranked, key=lambda m: m.index))
    return Ensemble(proj.mean, proj.components, chosen, len(proj.y_val))


@dataclass(frozen=True)
class Score:
    """One ``test`` task's result: correct and total test rows, and which models voted."""

    correct: int
    total: int
    models: int
    kept: tuple[int, ...]


def test(ctx: TaskContext, inputs: dict[str, list[Any]]) -> Score:
    """Score the ensemble (mean class probabilities) on this task's blocks' test rows."""
    (ensemble,) = inputs["aggregate"]
    first, stop = split_blocks(int(ctx.size), BLOCK, ctx.tasks)[ctx.index]
    fraction = float(ctx.params["test_fraction"])
    correct = total = 0
    for b in range(first, stop):
        x, y, is_test, _ = make_block(b, int(ctx.size), ctx.seed, fraction)
        if not is_test.any():
            continue
        z = (x[is_test] - ensemble.mean) @ ensemble.components
        proba = sum(m.estimator.predict_proba(z) for m in ensemble.models)
        classes = ensemble.models[0].estimator.classes_
        correct += int((classes[np.argmax(proba, axis=1)] == y[is_test]).sum())
        total += int(is_test.sum())
    kept = tuple(m.index for m in ensemble.models)
    return Score(correct, total, int(ctx.params["n_models"]), kept)


def summary(outputs: dict[str, list[Any]]) -> dict[str, Any]:
    """Test accuracy of the ensemble, the counts behind it, and the models that voted."""
    scores: list[Score] = outputs["test"]
    correct = sum(s.correct for s in scores)
    total = sum(s.total for s in scores)
    return {
        "test_samples": total,
        "correct": correct,
        "accuracy": round(correct / total, 6) if total else 0.0,
        "n_models": scores[0].models,
        "kept": ",".join(map(str, scores[0].kept)),
    }


def prepare(size: Size | None, params: dict[str, ParamValue]) -> Size:
    """Check the parameters that need each other or a bound ``Param`` cannot express."""
    if not 0 < float(params["test_fraction"]) < 1:  # type: ignore[arg-type]
        raise WorkloadError("parameter 'test_fraction' must be between 0 and 1 (exclusive)")
    if int(params["components"]) > 64:  # type: ignore[arg-type]
        raise WorkloadError("parameter 'components' must be <= 64 (8x8 pixels)")
    if int(params["keep"]) > int(params["n_models"]):  # type: ignore[arg-type]
        raise WorkloadError(f"parameter 'keep' ({params['keep']}) must be <= n_models "
                            f"({params['n_models']})")
    return PIPELINE.default_size if size is None else size


PIPELINE = Pipeline(
    name="ml",
    description="Jolteon's ML pipeline on enlarged sklearn digits: PCA, parallel random "
                "forests, choose the best, test",
    size_meaning="samples (the 1,797 digits enlarged with shifted, noisy copies)",
    default_size=8_000,
    params=(
        Param("n_models", int, 8, "models trained (shared among the train stage's tasks)",
              minimum=1),
        Param("trees", int, 6, "trees per model (random forest)", minimum=1),
        Param("components", int, 24, "PCA components kept (<= 64)", minimum=1),
        Param("keep", int, 0, "models kept by aggregate, best validation accuracy first "
              "(0 = all)", minimum=0),
        Param("test_fraction", float, 0.25, "share of samples held out for the test stage",
              above=0),
    ),
    stages=(
        Stage("pca", pca, (), 1, 1, "fit a PCA on the training samples and project them"),
        Stage("train", train, (Edge("pca", "all"),), 4, None,
              "train the n_models random forests, shared among the tasks"),
        Stage("aggregate", aggregate, (Edge("pca", "all"), Edge("train", "all")), 1, 1,
              "rank the models on validation samples, keep the best"),
        Stage("test", test, (Edge("aggregate", "all"),), 2, None,
              "score the ensemble on the test samples, blocks shared among the tasks"),
    ),
    source=source,
    summary=summary,
    min_size=64,
    prepare=prepare,
)
