"""utils.embeddings: cosine similarity, nearest neighbours and the 2-D map, each against an oracle."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from utils.embeddings import (  # noqa: E402
    cosine_similarity_matrix,
    embedding_map,
    nearest_neighbours,
    neighbour_overlap,
    principal_axes,
    project_2d,
    spread_labels,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def random_table(seed: int, n: int = 12, c: int = 6, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(n, c, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --- cosine similarity -----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
def test_cosine_matrix_equals_pytorch_pairwise(seed):
    A, B = random_table(seed, n=7), random_table(seed + 100, n=4)
    expected = F.cosine_similarity(A[:, None, :], B[None, :, :], dim=-1)  # (7, 1, C) vs (1, 4, C) -> (7, 4)
    torch.testing.assert_close(cosine_similarity_matrix(A, B), expected)
    square = cosine_similarity_matrix(A)
    torch.testing.assert_close(square, F.cosine_similarity(A[:, None], A[None], dim=-1))
    torch.testing.assert_close(square.diagonal(), torch.ones(7))  # every vector points its own way
    torch.testing.assert_close(square, square.T)


def test_cosine_by_hand_and_scale_invariance():
    A = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    S = cosine_similarity_matrix(A)
    torch.testing.assert_close(S[0, 1], torch.tensor(0.6))  # (3*1 + 4*0) / (5 * 1)
    scaled = A * torch.tensor([[10.0], [0.5]])  # lengths change, directions do not
    torch.testing.assert_close(cosine_similarity_matrix(scaled), S)
    flipped = A * torch.tensor([[-1.0], [1.0]])  # the opposite direction flips the sign
    torch.testing.assert_close(cosine_similarity_matrix(flipped)[0, 1], torch.tensor(-0.6))


def test_cosine_of_a_zero_row_is_zero_like_pytorch():
    A = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    S = cosine_similarity_matrix(A)
    assert S[0].tolist() == [0.0, 0.0]
    assert S[0, 1] == F.cosine_similarity(A[0], A[1], dim=0)


def test_cosine_keeps_input_dtype_and_does_not_modify_it():
    A = random_table(0, dtype=torch.float64)
    before = A.clone()
    S = cosine_similarity_matrix(A)
    assert S.dtype == torch.float64 and S.device == A.device
    assert torch.equal(A, before)


def test_cosine_rejects_bad_input():
    with pytest.raises(TypeError, match="A must be a torch.Tensor"):
        cosine_similarity_matrix([[1.0, 0.0]])
    with pytest.raises(TypeError, match="floating-point"):
        cosine_similarity_matrix(torch.ones(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="2-D"):
        cosine_similarity_matrix(torch.ones(3))
    with pytest.raises(ValueError, match="same number of columns"):
        cosine_similarity_matrix(torch.ones(2, 3), torch.ones(2, 4))


# --- nearest neighbours ----------------------------------------------------------------------------

def brute_force_neighbours(E: torch.Tensor, index: int, k: int) -> tuple[list[int], list[float]]:
    """The oracle: cosine by the textbook formula in plain Python, sorted by hand."""
    rows = E.tolist()

    def cosine(u, v):
        return sum(a * b for a, b in zip(u, v, strict=True)) / (math.hypot(*u) * math.hypot(*v))

    scored = sorted(((cosine(rows[index], rows[j]), j) for j in range(len(rows)) if j != index), reverse=True)
    return [j for _, j in scored[:k]], [s for s, _ in scored[:k]]


@pytest.mark.parametrize("seed", range(8))
def test_nearest_neighbours_equal_brute_force(seed):
    E = random_table(seed, n=15, c=5)
    index, k = seed % 15, 1 + seed % 6
    indices, similarities = nearest_neighbours(E, index, k)
    expected_indices, expected_similarities = brute_force_neighbours(E, index, k)
    assert indices.tolist() == expected_indices
    assert indices.dtype == torch.long and index not in indices.tolist()
    torch.testing.assert_close(similarities, torch.tensor(expected_similarities))


def test_nearest_neighbours_negative_index_and_all_others():
    E = random_table(3, n=6)
    indices, similarities = nearest_neighbours(E, -1, k=5)
    assert sorted(indices.tolist()) == [0, 1, 2, 3, 4]  # every other row, itself excluded
    assert torch.all(similarities[:-1] >= similarities[1:])  # most similar first
    before = E.clone()
    nearest_neighbours(E, 0, 2)
    assert torch.equal(E, before)


def test_nearest_neighbours_rejects_bad_arguments():
    E = random_table(0, n=4)
    with pytest.raises(ValueError, match="k must be between 1 and 3"):
        nearest_neighbours(E, 0, k=4)
    with pytest.raises(ValueError, match="index must be a row of E"):
        nearest_neighbours(E, 4, k=1)
    with pytest.raises(TypeError, match="index must be an int"):
        nearest_neighbours(E, True, k=1)
    with pytest.raises(TypeError, match="k must be an int"):
        nearest_neighbours(E, 0, k=1.0)
    with pytest.raises(ValueError, match="N >= 2"):
        nearest_neighbours(torch.ones(1, 3), 0, k=1)


# --- principal axes and the 2-D projection ---------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
def test_principal_axes_are_the_covariance_eigenvectors(seed):
    E = random_table(seed, n=30, c=5, dtype=torch.float64) * torch.tensor([5.0, 3.0, 2.0, 1.0, 0.5],
                                                                           dtype=torch.float64)
    components, ratio = principal_axes(E, k=3)
    X = E - E.mean(0)
    covariance = X.T @ X / (len(E) - 1)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)  # largest first
    torch.testing.assert_close(components @ components.T, torch.eye(3, dtype=torch.float64))
    # the same directions up to sign: |cos| = 1 between our component and the eigenvector
    torch.testing.assert_close((components @ eigenvectors[:, :3]).diagonal().abs(),
                               torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(ratio, eigenvalues[:3] / eigenvalues.sum())
    assert torch.all(components.gather(1, components.abs().argmax(1, keepdim=True)) > 0)  # sign rule


def svd_principal_axes(E: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The oracle: Lecture 2's original implementation (before utils.linalg.pca existed), kept here only
    to prove that the one PCA of the package gives the same numbers, signs included: the SVD of the
    centred table, the rows of Vh as components, S² / sum(S²) as the ratio, largest entry made positive."""
    X = E - E.mean(dim=0, keepdim=True)
    _, S, Vh = torch.linalg.svd(X, full_matrices=False)
    components = Vh[:k].clone()
    largest = components.abs().argmax(dim=1, keepdim=True)
    components *= torch.sign(components.gather(1, largest))
    variance = S**2
    return components, variance[:k] / variance.sum()


def lecture2_start_table() -> torch.Tensor:
    """Lecture 2's embedding table at its random start (Q10: TinyGPT, seed 10, the 47 words' rows)."""
    from utils.data import tiny_world_vocabulary
    from utils.models import GPTConfig, TinyGPT
    from utils.tokenization import WordTokenizer

    tok = WordTokenizer(tiny_world_vocabulary())
    torch.manual_seed(10)
    model = TinyGPT(GPTConfig(vocab_size=tok.vocab_size, block_size=10, d_model=32, n_heads=4, n_layers=2))
    return model.tok_emb.weight.detach()[[tok.token_to_id[w] for w in tiny_world_vocabulary()]]  # (47, 32)


def structured_table(seed: int, n: int = 47, c: int = 32) -> torch.Tensor:
    """Like a trained table: a few groups of rows (word classes) plus noise, at GPT-2's 0.02 scale."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(5, c, generator=g)
    groups = torch.randint(0, 5, (n,), generator=g)
    return 0.02 * (centres[groups] + 0.3 * torch.randn(n, c, generator=g))


@pytest.mark.parametrize("case", ["lecture 2 start", "structured 0", "structured 1", "random", "float64",
                                  "fewer rows than columns"])
def test_principal_axes_and_map_give_the_numbers_of_the_svd_version(case):
    E = {"lecture 2 start": lecture2_start_table, "structured 0": lambda: structured_table(0),
         "structured 1": lambda: structured_table(1), "random": lambda: random_table(5, n=47, c=32),
         "float64": lambda: random_table(6, n=30, c=8, dtype=torch.float64),
         "fewer rows than columns": lambda: random_table(7, n=6, c=12)}[case]()
    components, ratio = principal_axes(E, 2)
    coordinates = project_2d(E)
    assert components.dtype == ratio.dtype == coordinates.dtype == E.dtype
    # 1. The old formula in exact-enough arithmetic (float64): the same directions *and* signs, ratios and
    #    map, to the rounding of E's own dtype.
    wide = E.double()
    exact_components, exact_ratio = svd_principal_axes(wide, 2)
    exact_coordinates = (wide - wide.mean(0)) @ exact_components.T
    scale = exact_coordinates.abs().max()
    eps = torch.finfo(E.dtype).eps
    torch.testing.assert_close(components.double(), exact_components, rtol=0, atol=50 * eps)
    torch.testing.assert_close(ratio.double(), exact_ratio, rtol=0, atol=50 * eps)
    torch.testing.assert_close(coordinates.double(), exact_coordinates, rtol=0, atol=50 * eps * scale)
    # 2. The old implementation itself, in E's dtype, as Lecture 2 ran it: equal up to *its* rounding
    #    (float32 SVD of the table carries errors of ~1e-6 relative, ten times those of the new version).
    old_components, old_ratio = svd_principal_axes(E, 2)
    old_coordinates = (E - E.mean(0)) @ old_components.T
    torch.testing.assert_close(components, old_components, rtol=0, atol=100 * eps)
    torch.testing.assert_close(ratio, old_ratio, rtol=0, atol=100 * eps)
    torch.testing.assert_close(coordinates, old_coordinates, rtol=0, atol=100 * eps * scale.item())


def plane_data(seed: int, n: int = 20, c: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Points that lie exactly in a 2-D plane of a C-dimensional space: (2-D coordinates, embedded)."""
    g = torch.Generator().manual_seed(seed)
    Z = torch.randn(n, 2, generator=g, dtype=torch.float64) * torch.tensor([3.0, 1.0], dtype=torch.float64)
    basis, _ = torch.linalg.qr(torch.randn(c, 2, generator=g, dtype=torch.float64))  # (C, 2) orthonormal
    offset = torch.randn(1, c, generator=g, dtype=torch.float64)
    return Z, Z @ basis.T + offset  # (n, 2) @ (2, C) + (1, C) -> (n, C)


@pytest.mark.parametrize("seed", range(4))
def test_projection_of_planar_data_is_exact_up_to_rotation(seed):
    Z, E = plane_data(seed)
    P = project_2d(E)
    assert P.shape == (20, 2)
    torch.testing.assert_close(torch.cdist(P, P), torch.cdist(Z, Z))  # every distance kept
    # ... so P is the centred plane turned by an orthogonal 2x2 matrix Q: find Q, check it.
    Zc = Z - Z.mean(0)
    Q = torch.linalg.lstsq(Zc, P).solution  # (2, 2)
    torch.testing.assert_close(Zc @ Q, P)
    torch.testing.assert_close(Q.T @ Q, torch.eye(2, dtype=torch.float64))


def test_projection_properties():
    E = random_table(7, n=25, c=8, dtype=torch.float64)
    P = project_2d(E)
    torch.testing.assert_close(P.mean(0), torch.zeros(2, dtype=torch.float64))  # centred
    torch.testing.assert_close(P[:, 0] @ P[:, 1], torch.tensor(0.0, dtype=torch.float64))  # uncorrelated
    assert P[:, 0].var() >= P[:, 1].var()  # the first axis carries the most spread
    eigenvalues = torch.linalg.eigvalsh(torch.cov(E.T)).flip(0)
    torch.testing.assert_close(P.var(0), eigenvalues[:2])  # the variances are the top eigenvalues
    permutation = torch.randperm(25, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(project_2d(E[permutation]), P[permutation])  # row order does not matter
    torch.testing.assert_close(project_2d(-E), -P)  # a mirrored table gives the mirrored map
    torch.testing.assert_close(project_2d(E + 3.0), P)  # shifting every row changes nothing


def test_projection_of_two_points_and_bad_input():
    P = project_2d(torch.tensor([[0.0, 0.0, 1.0], [0.0, 4.0, 1.0]]))
    torch.testing.assert_close(P, torch.tensor([[-2.0, 0.0], [2.0, 0.0]]))
    E = random_table(1)
    before = E.clone()
    project_2d(E)
    assert torch.equal(E, before)
    with pytest.raises(ValueError, match="N >= 2"):
        project_2d(torch.ones(1, 4))
    with pytest.raises(ValueError, match="k must be between 1 and"):
        principal_axes(torch.ones(5, 3), k=4)


# --- the map ---------------------------------------------------------------------------------------

def test_embedding_map_draws_every_word_in_its_group():
    points = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    _, ax = plt.subplots()
    out = embedding_map(points, ["cat", "dog", "ate"], groups=["agent", "agent", "verb"], highlight="cat",
                        neighbours=["dog"], ax=ax, title="map", group_order=["verb", "agent"])
    assert out is ax and ax.get_title() == "map"
    assert [t.get_text() for t in ax.texts] == ["cat", "dog", "ate"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["verb", "agent"]
    assert len(ax.collections[0].get_offsets()) == 1 and len(ax.collections[1].get_offsets()) == 2
    assert len([line for line in ax.lines if line.get_gid() == "neighbour"]) == 1  # "cat" to its neighbour


@pytest.mark.parametrize("seed", range(3))
def test_spread_labels_never_overlap_and_only_move_down(seed):
    g = torch.Generator().manual_seed(seed)
    cluster = torch.randn(8, 2, generator=g) * 1e-3  # eight words on (almost) one spot
    points = torch.cat([cluster, torch.randn(20, 2, generator=g)])
    at = spread_labels(points, min_dx=0.09, min_dy=0.035)
    span = points.max(0).values - points.min(0).values
    assert torch.equal(at[:, 0], points[:, 0]) and torch.all(at[:, 1] <= points[:, 1])
    for i in range(len(at)):
        for j in range(i):
            apart_x = abs(at[i, 0] - at[j, 0]) >= 0.09 * span[0] * (1 - 1e-3)
            apart_y = abs(at[i, 1] - at[j, 1]) >= 0.035 * span[1] * (1 - 1e-3)
            assert apart_x or apart_y, (i, j)
    isolated = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    assert torch.equal(spread_labels(isolated), isolated)  # nothing to move


def test_embedding_map_rejects_mismatched_input():
    with pytest.raises(ValueError, match="points must be"):
        embedding_map(torch.zeros(3, 3), ["a", "b", "c"])
    with pytest.raises(ValueError, match="labels"):
        embedding_map(torch.zeros(3, 2), ["a", "b"])
    with pytest.raises(ValueError, match="highlight"):
        embedding_map(torch.zeros(2, 2), ["a", "b"], highlight="c")
    with pytest.raises(ValueError, match="neighbours"):
        embedding_map(torch.zeros(2, 2), ["a", "b"], highlight="a", neighbours=["z"])
    with pytest.raises(ValueError, match="group_order"):
        embedding_map(torch.zeros(2, 2), ["a", "b"], groups=["x", "y"], group_order=["x"])


# --- Lecture 6: neighbourhoods kept by a compression -------------------------------------------------

@pytest.mark.parametrize("seed", range(3))
def test_neighbour_overlap_equals_brute_force(seed):
    A = random_table(seed, n=14, c=6)
    B = A + 0.7 * random_table(seed + 50, n=14, c=6)  # a noisy copy: some neighbours change
    k = 1 + seed
    shared = sum(len(set(brute_force_neighbours(A, i, k)[0]) & set(brute_force_neighbours(B, i, k)[0]))
                 for i in range(14))
    assert neighbour_overlap(A, B, k) == pytest.approx(shared / (14 * k))
    assert neighbour_overlap(A, A, k) == 1.0
    assert neighbour_overlap(A, 3.0 * A, k) == 1.0  # cosine ignores length


def test_neighbour_overlap_rejects_bad_input():
    A = random_table(0, n=5)
    with pytest.raises(ValueError, match="the same N"):
        neighbour_overlap(A, random_table(1, n=6))
    with pytest.raises(ValueError, match="k must be between 1 and 4"):
        neighbour_overlap(A, A, k=5)
    with pytest.raises(TypeError, match="k must be an int"):
        neighbour_overlap(A, A, k=1.5)
