# Copyright (c) mmsimmm contributors. All rights reserved.
"""Learned whitening ("Lw") of global descriptors.

Radenovic et al. learn a linear post-processing from matching pairs
(https://arxiv.org/abs/1604.02426). With descriptors ``x`` (rows) and
matching pairs ``(q_i, p_i)``:

1. ``m`` is the mean of the query descriptors ``x_{q_i}`` (the centring the
   official whitening files use).
2. Intra-class scatter of the pair differences
   ``S = 1/n sum_i (x_{q_i} - x_{p_i})(x_{q_i} - x_{p_i})^T``. With the
   Cholesky factor ``S = L L^T``, ``W = L^-1`` whitens it (``W S W^T = I``):
   matching pairs become close in every direction.
3. Inter-class step: the whitened, centred descriptors ``y = W (x - m)``
   have scatter ``C = sum y y^T``; its eigenvectors ``R`` (by decreasing
   eigenvalue) rotate the space so that the leading directions carry most
   variance between different images (PCA). ``P = R^T W``.

Any other whitening of ``S`` (e.g. ``S^-1/2``) equals ``Q W`` for an
orthogonal ``Q``; the eigenvectors then become ``Q R`` and ``P`` is the same
up to the sign of each row, so distances after whitening do not depend on
the choice. Applying: ``l2n(P[:dim] (x - m))``.
"""
import logging
import os.path as osp
import pickle
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.logging import print_log

from mmsimmm.models.necks.gem_pooling import l2_normalize

ArrayLike = Union[torch.Tensor, np.ndarray, Sequence]


def _index_array(name: str, idxs: ArrayLike, num: int) -> torch.Tensor:
    idxs = torch.as_tensor(np.asarray(idxs), dtype=torch.long).flatten()
    bad = ((idxs < 0) | (idxs >= num)).nonzero().flatten()
    if bad.numel():
        k = int(bad[0])
        raise ValueError(f'{name}[{k}] = {int(idxs[k])} is out of range for '
                         f'{num} descriptors')
    return idxs


def regularized_cholesky(matrix: torch.Tensor,
                         first_jitter: float = 1e-10,
                         growth: float = 10.,
                         max_tries: int = 40) -> Tuple[torch.Tensor, float]:
    """Cholesky factor of ``matrix + alpha * I``, alpha grown until it works.

    cirtorch's ``whitenlearn`` (``cirtorch/utils/whiten.py::cholesky``)
    never fails on a covariance that is not positive definite: it first
    tries ``alpha = 0``, then ``alpha = 1e-10`` and multiplies ``alpha`` by
    10 after every failed factorisation, adding ``alpha`` to the diagonal.
    This follows that rule (same start, same growth); ``max_tries`` only
    bounds the loop so that a broken input (e.g. NaN) ends in an error.

    Args:
        matrix (torch.Tensor): Symmetric (D, D) matrix.
        first_jitter (float): The first non-zero ``alpha``. Defaults to
            1e-10 (cirtorch).
        growth (float): Factor of ``alpha`` after each failure. Defaults
            to 10. (cirtorch).
        max_tries (int): Factorisations tried before giving up (alpha 0,
            then ``max_tries - 1`` growing values). Defaults to 40
            (``alpha`` up to 1e28).

    Returns:
        tuple[torch.Tensor, float]: The lower Cholesky factor and the
        ``alpha`` that was added (0.0 for a positive-definite matrix).
    """
    if not torch.isfinite(matrix).all():
        raise ValueError('cannot factorise a matrix with NaN or inf entries '
                         '(are some descriptors not finite?)')
    eye = torch.eye(matrix.shape[0], dtype=matrix.dtype)
    alpha = 0.
    for _ in range(max_tries):
        chol, info = torch.linalg.cholesky_ex(matrix + alpha * eye)
        if int(info) == 0:
            if alpha > 0:
                print_log(
                    'learn_whitening: the matching-pair scatter is not '
                    f'positive definite; added {alpha:.0e} on its diagonal '
                    '(cirtorch whitenlearn rule)',
                    logger='current',
                    level=logging.WARNING)
            return chol, alpha
        alpha = first_jitter if alpha == 0 else alpha * growth
    raise ValueError(f'the matrix is not positive definite even with '
                     f'{alpha / growth:.0e} added on its diagonal')


def learn_whitening(descriptors: ArrayLike,
                    qidxs: ArrayLike,
                    pidxs: ArrayLike,
                    shrinkage: float = 0.0,
                    regularize: bool = True) -> Tuple[torch.Tensor,
                                                      torch.Tensor]:
    """Learn the whitening mean ``m`` and projection ``P`` (module doc).

    Args:
        descriptors (ArrayLike): Descriptors (N, D), one per row.
        qidxs (ArrayLike): Row indices of the pair queries.
        pidxs (ArrayLike): Row indices of the matching images (same length).
        shrinkage (float): Adds ``shrinkage * trace(S) / D`` to the diagonal
            of ``S`` before the factorisation; 0 is the plain estimate
            (cirtorch). Defaults to 0.0.
        regularize (bool): If ``S`` is not positive definite (e.g. fewer
            pairs than dimensions), add a growing ``alpha * I`` until the
            Cholesky factorisation succeeds, as cirtorch's ``whitenlearn``
            does (:func:`regularized_cholesky`); False raises instead.
            Defaults to True.

    Returns:
        tuple[torch.Tensor, torch.Tensor]: ``m`` (D,) and ``P`` (D, D),
        float32; rows of ``P`` ordered by decreasing inter-class variance.
    """
    x = torch.as_tensor(np.asarray(descriptors), dtype=torch.float64)
    if x.dim() != 2:
        raise ValueError('descriptors must be (N, D), got shape '
                         f'{tuple(x.shape)}')
    q = _index_array('qidxs', qidxs, x.shape[0])
    p = _index_array('pidxs', pidxs, x.shape[0])
    if q.numel() != p.numel() or q.numel() == 0:
        raise ValueError(f'need as many qidxs ({q.numel()}) as pidxs '
                         f'({p.numel()}), and at least one pair')
    dim = x.shape[1]
    mean = x[q].mean(dim=0)
    diff = x[q] - x[p]
    scatter = diff.T @ diff / diff.shape[0]
    if shrinkage > 0:
        scatter = scatter + shrinkage * scatter.trace() / dim * torch.eye(
            dim, dtype=scatter.dtype)
    if regularize:
        chol, _ = regularized_cholesky(scatter)
    else:
        chol, info = torch.linalg.cholesky_ex(scatter)
        if int(info) != 0:
            raise ValueError(
                'the matching-pair scatter is singular: '
                f'{q.numel()} pairs for {dim}-d descriptors (need clearly '
                'more pairs than dimensions, shrinkage > 0 or '
                'regularize=True)')
    eye = torch.eye(dim, dtype=scatter.dtype)
    whiten = torch.linalg.solve_triangular(chol, eye, upper=False)
    centred = (x - mean) @ whiten.T
    eigval, eigvec = torch.linalg.eigh(centred.T @ centred)
    order = eigval.argsort(descending=True)
    proj = eigvec[:, order].T @ whiten
    return mean.float(), proj.float()


def apply_whitening(descriptors: torch.Tensor,
                    mean: torch.Tensor,
                    proj: torch.Tensor,
                    dims: Optional[int] = None) -> torch.Tensor:
    """Project descriptors with ``P[:dims] (x - m)`` and L2-normalise.

    Args:
        descriptors (torch.Tensor): Descriptors (N, D).
        mean (torch.Tensor): ``m`` of shape (D,).
        proj (torch.Tensor): ``P`` of shape (D', D).
        dims (int, optional): Keep the first ``dims`` output dimensions.
            Defaults to None (all).

    Returns:
        torch.Tensor: Whitened descriptors (N, dims or D').
    """
    proj = proj if dims is None else proj[:dims]
    mean = mean.to(descriptors)
    out = (descriptors - mean) @ proj.to(descriptors).T
    return l2_normalize(out)


def check_whitening(whitening: Dict[str, torch.Tensor],
                    source: str = 'whitening') -> Dict[str, torch.Tensor]:
    """Validate a ``{'m', 'P'}`` dict; return float32 ``m`` (D,) and ``P``.

    Args:
        whitening (dict): Holds ``m`` (D,) or (D, 1) and ``P`` (D', D).
        source (str): Name used in error messages. Defaults to 'whitening'.

    Returns:
        dict[str, torch.Tensor]: ``m`` and ``P``.
    """
    if not isinstance(whitening, dict):
        raise TypeError(f'{source}: expected a dict with keys m and P, got '
                        f'{type(whitening).__name__}')
    for key in ('m', 'P'):
        if key not in whitening:
            raise KeyError(f'{source}: missing key {key!r} (has '
                           f'{sorted(whitening)})')
    mean = torch.as_tensor(np.asarray(whitening['m']),
                           dtype=torch.float32).flatten()
    proj = torch.as_tensor(np.asarray(whitening['P']), dtype=torch.float32)
    if proj.dim() != 2 or proj.shape[1] != mean.numel():
        raise ValueError(f'{source}: P of shape {tuple(proj.shape)} does not '
                         f'match m of length {mean.numel()}')
    return dict(m=mean, P=proj)


def save_whitening(path: str, mean: torch.Tensor, proj: torch.Tensor) -> None:
    """Save ``{'m', 'P'}`` as float32 tensors (loadable with weights_only).

    Args:
        path (str): Output file.
        mean (torch.Tensor): ``m`` (D,).
        proj (torch.Tensor): ``P`` (D', D).
    """
    torch.save(check_whitening(dict(m=mean, P=proj), path), path)


def load_whitening(path: str) -> Dict[str, torch.Tensor]:
    """Load a whitening file written by :func:`save_whitening`.

    Args:
        path (str): The file: tensors or numpy arrays (numpy is
            allow-listed for ``weights_only`` loads when mmsimmm is
            imported), e.g. an official ``{'m', 'P'}`` whitening.

    Returns:
        dict[str, torch.Tensor]: ``m`` (D,) and ``P`` (D', D).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'whitening file not found: {path}')
    try:
        data = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f'{path} is not a tensor-only whitening file (official numpy '
            'files: convert them with the cirtorch GeM converter\'s '
            '`--whitening` option, or save the tensors with '
            '`save_whitening`)') from err
    return check_whitening(data, path)
