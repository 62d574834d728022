"""utils.retrieval: BM25 against scores worked by hand, ranking, recall@k, the dense encoder, the reader.

Oracles: BM25 scores computed by hand from the formula in API.md (Lucene's idf), a brute-force ranking,
the mean of embedding rows, ``F.cross_entropy`` written out, and the reader's input built by hand.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from utils.models import GPTConfig, TinyEncoder
from utils.retrieval import (
    BM25,
    READER_SPECIALS,
    BagOfWordsEncoder,
    ExtractiveReader,
    bm25_term_score,
    dense_scores,
    encode_bags,
    in_batch_contrastive_loss,
    rank,
    read_answers,
    reader_batch,
    reader_targets,
    reader_tokens,
    recall_at_k,
    retrieve_and_read,
)
from utils.tokenization import WordTokenizer

DOCS = [["the", "cat", "sat"], ["the", "dog"], ["a", "cat", "and", "a", "cat"]]


def test_bm25_scores_worked_by_hand():
    # N = 3, lengths 3, 2, 5, avgdl = 10/3. "cat" is in 2 documents: idf = ln(1 + 1.5 / 2.5) = ln 1.6.
    bm25 = BM25(DOCS)
    idf_cat = math.log(1.6)
    norm = lambda length: 1.5 * (0.25 + 0.75 * length / (10 / 3))  # noqa: E731 (k1 (1 - b + b |d| / avgdl))
    expected = [idf_cat * 1 / (1 + norm(3)), 0.0, idf_cat * 2 / (2 + norm(5))]
    torch.testing.assert_close(bm25.scores(["cat"]), torch.tensor(expected, dtype=torch.float64))
    assert [round(x, 4) for x in expected] == [0.1969, 0.0, 0.2314]
    # two terms add; "the" (2 documents) has the same idf as "cat"; "dog" (1 document) ln(1 + 2.5 / 1.5)
    both = bm25.scores(["dog", "the"])
    idf_dog = math.log(1 + 2.5 / 1.5)
    expected_1 = idf_dog / (1 + norm(2)) + idf_cat / (1 + norm(2))
    assert both[1].item() == pytest.approx(expected_1, rel=1e-12)
    assert both[0].item() == pytest.approx(idf_cat / (1 + norm(3)), rel=1e-12)
    assert both[2].item() == 0.0


def test_lucene_idf_stays_positive_where_classic_idf_goes_negative():
    # "x" in 3 of 4 documents: the classic Robertson idf ln((N - n + .5) / (n + .5)) = ln(1.5 / 3.5) < 0
    bm25 = BM25([["x"], ["x"], ["x"], ["y"]])
    assert math.log(1.5 / 3.5) < 0
    assert bm25.idf("x") == pytest.approx(math.log(1 + 1.5 / 3.5)) and bm25.idf("x") > 0
    assert bm25.idf("never") == 0.0


def test_term_score_matches_the_class_and_parameters_matter():
    bm25 = BM25(DOCS, k1=1.2, b=0.5)
    direct = bm25_term_score(tf=2, df=2, n_documents=3, doc_length=5, avgdl=10 / 3, k1=1.2, b=0.5)
    assert bm25.scores(["cat"])[2].item() == pytest.approx(direct, rel=1e-12)
    # b = 0: no length normalisation; k1 = 0: term frequency does not matter beyond presence
    flat = BM25(DOCS, k1=1.5, b=0.0).scores(["cat"])
    assert flat[0].item() == pytest.approx(math.log(1.6) / 2.5)
    presence = BM25(DOCS, k1=0.0).scores(["cat"])
    assert presence[0].item() == pytest.approx(presence[2].item()) == pytest.approx(math.log(1.6))


def test_query_terms_count_once_and_unknown_terms_score_zero():
    bm25 = BM25(DOCS)
    torch.testing.assert_close(bm25.scores(["cat", "cat", "cat"]), bm25.scores(["cat"]))
    assert torch.equal(bm25.scores(["zebra", "unicorn"]), torch.zeros(3, dtype=torch.float64))
    assert torch.equal(bm25.scores([]), torch.zeros(3, dtype=torch.float64))


def test_top_k_is_best_first_with_ties_to_the_lower_index():
    bm25 = BM25([["b"], ["a"], ["a"], ["c"], ["a", "a"]])
    top = bm25.top_k(["a"], k=3)
    assert [i for i, _ in top] == [4, 1, 2]  # the doubled "a" first, then the tie 1, 2 in index order
    assert top[1][1] == top[2][1]
    scores = bm25.scores(["a"])
    assert [s for _, s in top] == sorted(scores.tolist(), reverse=True)[:3]
    assert [i for i, _ in bm25.top_k(["zzz"], k=5)] == [0, 1, 2, 3, 4]  # all 0: index order


def test_rank_matches_a_brute_force_stable_sort():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (5, 12), generator=g).float()  # many ties
    expected = [sorted(range(12), key=lambda i, row=row: (-row[i].item(), i)) for row in scores]
    assert rank(scores).tolist() == expected


def test_recall_at_k():
    rankings = torch.tensor([[3, 1, 0, 2], [0, 1, 2, 3], [2, 3, 1, 0]])
    relevant = torch.tensor([1, 0, 0])
    recalls = [recall_at_k(rankings, relevant, k) for k in (1, 2, 3, 4)]
    assert recalls == pytest.approx([1 / 3, 2 / 3, 2 / 3, 1])
    with pytest.raises(ValueError, match="k must be <="):
        recall_at_k(rankings, relevant, 5)
    with pytest.raises(ValueError, match="relevant"):
        recall_at_k(rankings, torch.tensor([1, 0]), 1)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="empty"):
        BM25([])
    with pytest.raises(ValueError, match="at least one term"):
        BM25([[], []])
    with pytest.raises(TypeError, match="not one str"):
        BM25(DOCS).scores("the cat")
    with pytest.raises(TypeError, match="documents"):
        BM25("the cat")
    with pytest.raises(TypeError, match=r"documents\[1\]"):
        BM25([["a"], "b c"])
    with pytest.raises(ValueError, match="k1"):
        BM25(DOCS, k1=-1)
    with pytest.raises(ValueError, match="b must be"):
        BM25(DOCS, b=1.5)
    with pytest.raises(ValueError, match="k must be <= the number of documents"):
        BM25(DOCS).top_k(["cat"], k=4)
    with pytest.raises(ValueError, match="k must be >= 1"):
        BM25(DOCS).top_k(["cat"], k=0)


def test_inputs_are_not_modified():
    docs = [list(d) for d in DOCS]
    query = ["cat", "cat"]
    BM25(docs).top_k(query, k=2)
    assert docs == DOCS and query == ["cat", "cat"]


def test_bag_of_words_encoder_is_the_mean_of_the_real_words():
    torch.manual_seed(0)
    encoder = BagOfWordsEncoder(vocab_size=6, dim=4)
    ids, mask = encode_bags([[1, 2, 3], [4]])
    assert ids.tolist() == [[1, 2, 3], [4, 0, 0]] and mask.tolist() == [[True] * 3, [True, False, False]]
    out = encoder(ids, mask)
    table = encoder.embedding.weight
    torch.testing.assert_close(out[0], table[[1, 2, 3]].mean(dim=0))
    torch.testing.assert_close(out[1], table[4])  # padding is not averaged in


def test_dense_scores_are_cosines_and_the_contrastive_loss_is_cross_entropy():
    g = torch.Generator().manual_seed(1)
    q, p = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    cos = dense_scores(q, p)
    torch.testing.assert_close(cos[2, 4], F.cosine_similarity(q[2], p[4], dim=0))
    loss = in_batch_contrastive_loss(q, p, temperature=0.1)
    by_hand = -torch.stack([torch.log_softmax(cos[i] / 0.1, dim=0)[i] for i in range(5)]).mean()
    torch.testing.assert_close(loss, by_hand)
    with pytest.raises(ValueError, match="temperature"):
        in_batch_contrastive_loss(q, p, temperature=0.0)


def reader_tokenizer() -> WordTokenizer:
    return WordTokenizer(["who", "?", "a", "b", "c", ".", "[1]", "[2]"], specials=READER_SPECIALS)


def tiny_reader(tok: WordTokenizer) -> ExtractiveReader:
    markers = [tok.token_to_id[m] for m in ("[1]", "[2]")]
    names = [tok.token_to_id[w] for w in ("a", "b", "c")]
    config = GPTConfig(vocab_size=tok.vocab_size, block_size=12, d_model=8, n_heads=2, n_layers=1)
    return ExtractiveReader(TinyEncoder(config, n_segments=2), pad_id=tok.pad_id,
                            sep_id=tok.token_to_id["[SEP]"], marker_ids=markers, match_ids=names)


def test_reader_input_and_targets():
    tokens, slots = reader_tokens("who ?", ["a b .", "c ."])
    assert tokens == ["[CLS]", "who", "?", "[SEP]", "[1]", "a", "b", ".", "[2]", "c", "."]
    assert slots == [-1, -1, -1, -1, -1, 0, 0, 0, -1, 1, 1]
    batch = reader_batch([("who ?", ["a b .", "c ."]), ("who ?", ["c ."])], reader_tokenizer(), length=12)
    assert batch.ids.shape == (2, 12) and batch.ids[1, 7:].tolist() == [0] * 5  # padded with <pad> = 0
    assert reader_targets(batch, [0, 0]).tolist() == [6, 5]  # "b" (before the first "."), "c"
    assert reader_targets(batch, [1, 0]).tolist() == [9, 5]
    with pytest.raises(ValueError, match="not a passage"):
        reader_targets(batch, [0, 1])
    with pytest.raises(ValueError, match="length must be >= 11"):
        reader_batch([("who ?", ["a b .", "c ."])], reader_tokenizer(), length=10)
    with pytest.raises(ValueError, match="does not know"):
        reader_batch([("why ?", ["a ."])], reader_tokenizer(), length=10)


def test_extractive_reader_only_points_into_passages():
    torch.manual_seed(0)
    tok = reader_tokenizer()
    reader = tiny_reader(tok)
    batch = reader_batch([("who ?", ["a b .", "c ."]), ("who ?", ["c ."])], tok, length=12)
    assert torch.equal(reader.candidate_mask(batch.ids), batch.answer_mask)  # read off the ids alone
    logits = reader(batch.ids)
    assert torch.isinf(logits[~batch.answer_mask]).all() and torch.isfinite(logits[batch.answer_mask]).all()
    answers = read_answers(reader, batch)
    for (word, slot), tokens, slots in zip(answers, batch.tokens, batch.slots.tolist(), strict=True):
        assert slot >= 0 and word in tokens
        assert any(t == word and s == slot for t, s in zip(tokens, slots, strict=False))  # the cited passage
    with pytest.raises(ValueError, match="at least one candidate"):
        reader(batch.ids, torch.zeros_like(batch.answer_mask))
    with pytest.raises(TypeError, match="TinyEncoder"):
        ExtractiveReader(torch.nn.Linear(2, 2), pad_id=0, sep_id=1, marker_ids=[2], match_ids=[3])


def test_name_match_marks_the_passages_that_share_a_name_with_the_question():
    tok = reader_tokenizer()
    reader = tiny_reader(tok)
    items = [("who a ?", ["b a .", "c ."]), ("who ?", ["a ."]), ("c b ?", ["a .", "b c ."])]
    batch = reader_batch(items, tok, length=12)
    marks = reader.name_match(batch.ids)
    # row 0: passage 1 ("b a .") names "a" -> all three of its words; passage 2 does not ("." is no name)
    assert marks[0].tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0]
    assert marks[1].sum() == 0  # the question names nothing
    assert marks[2].tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]  # only "b c ." shares a name


def test_retrieve_and_read_keeps_the_top_k_and_cites_one_of_them():
    torch.manual_seed(2)
    tok = reader_tokenizer()
    reader = tiny_reader(tok)
    passages = ["a b .", "c .", "b c .", "a ."]
    scores = torch.tensor([0.1, 2.0, 0.5, 2.0])
    result = retrieve_and_read("who ?", scores, passages, reader, tok, k=2, length=12)
    assert [i for i, _ in result.retrieved] == [1, 3]  # best first, the tie to the lower index
    assert result.cited in (1, 3) and result.answer in passages[result.cited].split()
    planted = retrieve_and_read("who ?", scores, passages, reader, tok, k=2, length=12, planted=(0, 0))
    assert [i for i, _ in planted.retrieved] == [0, 3]  # the best passage swapped for passage 0
    with pytest.raises(ValueError, match="one score per passage"):
        retrieve_and_read("who ?", scores[:3], passages, reader, tok, k=2, length=12)
    with pytest.raises(ValueError, match="k must be <="):
        retrieve_and_read("who ?", scores, passages, reader, tok, k=5, length=12)
