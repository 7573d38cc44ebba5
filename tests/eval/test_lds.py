import numpy as np
import pytest
import scipy.stats
import torch

from diffusers_attr.eval import as_query_train, lds, spearman_columns, subset_masks


def _direct_lds(scores, masks, losses):
    """The LDS by hand with scipy: per query, Spearman(mask @ score, -loss) over subsets; mean."""
    per = []
    for q in range(losses.shape[1]):
        pred = masks.astype(float) @ scores[q]
        per.append(scipy.stats.spearmanr(pred, -losses[:, q]).correlation)
    return float(np.nanmean(per)), np.array(per)


def test_lds_matches_scipy_on_random_data():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(7, 40))
    masks = rng.random((25, 40)) < 0.5
    losses = rng.normal(size=(25, 7))
    losses[:, 3] = np.round(losses[:, 3])  # ties
    expected, per = _direct_lds(scores, masks, losses)
    result = lds(scores, masks, losses, n_bootstrap=200)
    assert result.mean == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(result.per_query, per, atol=1e-12)
    assert result.ci_low <= result.mean <= result.ci_high
    assert result.n_subsets == 25 and result.n_queries == 7


def test_spearman_columns_matches_scipy_with_ties():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 4, size=(30, 5)).astype(float)
    b = rng.normal(size=(30, 5))
    ours = spearman_columns(a, b)
    for j in range(5):
        assert ours[j] == pytest.approx(scipy.stats.spearmanr(a[:, j], b[:, j]).correlation, abs=1e-12)
    assert np.isnan(spearman_columns(np.ones((5, 1)), b[:5, :1])[0])


def test_dattri_orientation_and_torch_input():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(6, 30))
    masks = subset_masks(30, 12, seed=3)
    losses = rng.normal(size=(12, 6))
    a = lds(scores, masks, losses, n_bootstrap=0)
    b = lds(torch.tensor(scores.T), masks, losses, n_bootstrap=0)  # dattri: [n_train, n_test]
    c = lds(scores.T, masks, losses, orientation="train_query", n_bootstrap=0)
    assert a.mean == pytest.approx(b.mean) and a.mean == pytest.approx(c.mean)
    with pytest.raises(ValueError, match="square"):
        as_query_train(np.zeros((5, 5)), 5, 5)
    with pytest.raises(ValueError, match="do not fit"):
        lds(np.zeros((3, 3)), masks, losses)


def test_planted_linear_datamodel_gives_lds_near_one_and_shuffled_near_zero():
    rng = np.random.default_rng(4)
    n_train, n_query, n_subsets = 200, 30, 64
    true = rng.normal(size=(n_query, n_train))  # planted: loss = bias - mask @ score + small noise
    masks = subset_masks(n_train, n_subsets, 0.5, seed=5)
    losses = 3.0 - masks.astype(float) @ true.T + 0.05 * rng.normal(size=(n_subsets, n_query))
    good = lds(true, masks, losses, n_bootstrap=300, seed=1)
    assert good.mean > 0.97 and good.ci_low > 0.95
    shuffled = true[:, rng.permutation(n_train)]
    bad = lds(shuffled, masks, losses, n_bootstrap=300, seed=1)
    assert abs(bad.mean) < 0.1 and bad.ci_low < 0 < bad.ci_high + 0.05
    assert lds(-true, masks, losses, n_bootstrap=0).mean < -0.97  # the sign convention matters


def test_subset_masks():
    m = subset_masks(101, 9, 0.5, seed=0)
    assert m.shape == (9, 101) and m.dtype == bool
    assert (m.sum(1) == 50).all() or (m.sum(1) == 51).all()
    np.testing.assert_array_equal(m, subset_masks(101, 9, 0.5, seed=0))
    assert not np.array_equal(m, subset_masks(101, 9, 0.5, seed=1))
    with pytest.raises(ValueError):
        subset_masks(10, 2, 1.0)
