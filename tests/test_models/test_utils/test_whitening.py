# Copyright (c) mmsimmm contributors. All rights reserved.
import numpy as np
import pytest
import torch

from mmsimmm.models.utils.whitening import (
    apply_whitening,
    learn_whitening,
    load_whitening,
    regularized_cholesky,
    save_whitening,
)


def synthetic(num_classes: int, per_class: int, seed: int):
    """Unit descriptors whose within-class noise dominates two directions.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_classes, 6)) * [0.1, 0.1, 1, 1, 1, 1]
    x, labels = [], []
    for c in range(num_classes):
        noise = rng.normal(size=(per_class, 6)) * [2, 2, .1, .1, .1, .1]
        x.append(centres[c] + noise)
        labels += [c] * per_class
    x = np.concatenate(x)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return torch.as_tensor(x, dtype=torch.float32), np.array(labels)


def pairs_of(labels):
    q, p = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        for a in range(len(idx)):
            q.append(idx[a])
            p.append(idx[(a + 1) % len(idx)])
    return np.array(q), np.array(p)


def distance_ratio(x, labels):
    """Mean matching-pair distance over mean non-matching distance."""
    d = torch.cdist(x, x)
    same = torch.as_tensor(labels[:, None] == labels[None])
    off = ~torch.eye(len(labels), dtype=torch.bool)
    return (d[same & off].mean() / d[~same].mean()).item()


def test_whitening_brings_matching_pairs_closer():
    x, labels = synthetic(20, 6, seed=0)
    q, p = pairs_of(labels)
    mean, proj = learn_whitening(x, q, p)
    assert mean.shape == (6, ) and proj.shape == (6, 6)
    torch.testing.assert_close(mean, x[q].mean(0))
    # held-out images of new classes
    test_x, test_labels = synthetic(15, 5, seed=1)
    before = distance_ratio(test_x, test_labels)
    after = distance_ratio(apply_whitening(test_x, mean, proj), test_labels)
    assert after < 0.7 * before
    out = apply_whitening(test_x, mean, proj, dims=3)
    assert out.shape == (75, 3)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(75), atol=1e-5,
                               rtol=0)


def test_whitening_linear_algebra():
    x, labels = synthetic(20, 6, seed=2)
    q, p = pairs_of(labels)
    mean, proj = learn_whitening(x, q, p)
    x64, proj64 = x.double(), proj.double()
    diff = x64[q] - x64[p]
    scatter = diff.T @ diff / len(q)
    # P whitens the matching-pair scatter
    torch.testing.assert_close(proj64 @ scatter @ proj64.T,
                               torch.eye(6, dtype=torch.float64), atol=1e-3,
                               rtol=0)
    # and its rows are ordered by decreasing variance of the projections
    var = ((x64 - mean.double()) @ proj64.T).pow(2).sum(0)
    assert torch.all(var[:-1] >= var[1:])
    # the symmetric S^-1/2 instead of the Cholesky factor gives the same P
    # up to the sign of each row
    val, vec = torch.linalg.eigh(scatter)
    w = vec @ torch.diag(val.rsqrt()) @ vec.T
    y = (x64 - mean.double()) @ w.T
    val2, vec2 = torch.linalg.eigh(y.T @ y)
    alt = vec2[:, val2.argsort(descending=True)].T @ w
    torch.testing.assert_close(alt.abs(), proj64.abs(), atol=1e-4, rtol=0)


def test_whitening_errors_and_file_round_trip(tmp_path):
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    x[:, 4:] = 0  # exactly singular scatter (round-off cannot rescue it)
    with pytest.raises(ValueError, match='singular'):
        learn_whitening(x, [0, 1], [1, 2], regularize=False)
    mean, proj = learn_whitening(x, [0, 1], [1, 2], shrinkage=0.1)
    assert torch.isfinite(proj).all()
    with pytest.raises(ValueError, match=r'pidxs\[1\] = 9'):
        learn_whitening(x, [0, 1], [1, 9])
    path = str(tmp_path / 'lw.pth')
    save_whitening(path, mean, proj)
    loaded = load_whitening(path)
    torch.testing.assert_close(loaded['P'], proj)
    torch.testing.assert_close(loaded['m'], mean)
    numpy_file = str(tmp_path / 'official.pth')
    torch.save(dict(m=np.zeros((8, 1)), P=np.eye(8)), numpy_file)
    # numpy arrays are allow-listed for weights_only loads (import mmsimmm)
    official = load_whitening(numpy_file)
    torch.testing.assert_close(official['P'], torch.eye(8))
    assert official['m'].shape == (8, )
    torch.save(dict(m=np.zeros(8), P=torch.nn.Linear(8, 8)), numpy_file)
    with pytest.raises(ValueError, match='not a tensor-only whitening file'):
        load_whitening(numpy_file)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_whitening(str(tmp_path / 'missing.pth'))
    torch.save(dict(m=torch.zeros(3)), path)
    with pytest.raises(KeyError, match="'P'"):
        load_whitening(path)


def test_rank_deficient_scatter_is_regularised_like_cirtorch():
    """2 pairs for 8-d descriptors: the pair scatter has rank 2. cirtorch's
    whitenlearn adds alpha * I (alpha = 0, 1e-10, 1e-9, ...) until the
    Cholesky factorisation works, instead of failing."""
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    q, p = [0, 1], [1, 2]
    diff = (x[q] - x[p]).double()
    scatter = diff.T @ diff / 2
    assert torch.linalg.matrix_rank(scatter) == 2
    chol, alpha = regularized_cholesky(scatter)
    eye = torch.eye(8, dtype=torch.float64)
    # the rule: the first alpha of the 1e-10 * 10^k sequence that works
    assert alpha > 0
    k = round(np.log10(alpha / 1e-10))
    assert alpha == pytest.approx(1e-10 * 10**k)
    assert int(torch.linalg.cholesky_ex(scatter + alpha * eye)[1]) == 0
    if k > 0:
        assert int(torch.linalg.cholesky_ex(scatter + alpha / 10 * eye)[1])
    torch.testing.assert_close(chol @ chol.T, scatter + alpha * eye)
    # learn_whitening uses it by default: P whitens the regularised scatter
    mean, proj = learn_whitening(x, q, p)
    assert torch.isfinite(proj).all() and torch.isfinite(mean).all()
    proj64 = proj.double()
    whitened = proj64 @ (scatter + alpha * eye) @ proj64.T
    # (P is float32 with entries ~ alpha^-1/2: float32 rounding ~1e-3)
    torch.testing.assert_close(whitened, eye, atol=2e-2, rtol=0)
    # a positive-definite matrix is factorised as is
    chol, alpha = regularized_cholesky(eye * 2)
    assert alpha == 0.0
    with pytest.raises(ValueError, match='NaN'):
        regularized_cholesky(eye * float('nan'))
