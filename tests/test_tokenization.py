"""utils.tokenization: BPE against hand-computed merges and a naive replay, round trips, and baselines.

Oracles: merges of "aaabdaaabac" worked out by hand, ``str.encode`` for the byte level, a replay of the
merges one at a time for ``encode``, and round-trip properties on arbitrary Unicode (hypothesis).
"""

import tempfile
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from utils.data import course_text
from utils.tokenization import (
    BPETokenizer,
    CharTokenizer,
    WordTokenizer,
    get_pair_counts,
    merge_pair,
    split_chunks,
    train_incremental,
)

# hypothesis keeps its example database and Unicode tables in ./.hypothesis by default: use the temp dir
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "llm-building-blocks-hypothesis")
any_text = st.text(alphabet=st.characters())  # every code point, lone surrogates included
# deadline=None in the settings below: shared CI machines are slow at times
a, b, c, d = 97, 98, 99, 100


@pytest.fixture(scope="module")
def course_tok() -> BPETokenizer:
    return BPETokenizer().train(course_text(), vocab_size=320)


def utf8(text: str) -> list[int]:
    return list(text.encode("utf-8", errors="surrogatepass"))


# --- the two training steps ------------------------------------------------------------------------

def test_get_pair_counts_by_hand_and_without_modifying_inputs():
    ids = [1, 2, 3, 1, 2]
    counts = {(1, 2): 10, (7, 7): 1}
    assert get_pair_counts(ids) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert get_pair_counts(ids, counts) == {(1, 2): 12, (7, 7): 1, (2, 3): 1, (3, 1): 1}
    assert counts == {(1, 2): 10, (7, 7): 1} and ids == [1, 2, 3, 1, 2]
    assert get_pair_counts([]) == {} and get_pair_counts([4]) == {}
    assert get_pair_counts([5, 5, 5]) == {(5, 5): 2}  # counting overlaps; merging does not


def test_merge_pair_by_hand_and_without_modifying_inputs():
    ids = [5, 6, 5, 6, 7]
    assert merge_pair(ids, (5, 6), 9) == [9, 9, 7]
    assert ids == [5, 6, 5, 6, 7]
    assert merge_pair([5, 5, 5], (5, 5), 9) == [9, 5]  # left to right, no overlap
    assert merge_pair([5, 5, 5, 5], (5, 5), 9) == [9, 9]
    assert merge_pair([1, 2, 3], (3, 1), 9) == [1, 2, 3]
    assert merge_pair([], (1, 2), 9) == []
    assert merge_pair((1, 2), (1, 2), 9) == [9]  # any sequence in, a new list out


# --- training ----------------------------------------------------------------------------------------

def test_classic_example_merges_by_hand():
    # aaabdaaabac -> (a,a)=256: [256 a b d 256 a b a c]; (a,b)=2 ties (256,a)=2, smaller pair wins -> 257;
    # then (256,257) -> 258: [258 d 258 a c]; all pairs once: (a,c), (d,258), (258,260), (261,259).
    tok = BPETokenizer().train("aaabdaaabac", vocab_size=1000)
    assert list(tok.merges.items()) == [
        ((a, a), 256), ((a, b), 257), ((256, 257), 258), ((a, c), 259),
        ((d, 258), 260), ((258, 260), 261), ((261, 259), 262),
    ]
    assert tok.vocab_size == 263  # ran out of pairs: stopped early
    assert tok.vocab[258] == b"aaab" and tok.vocab[262] == b"aaabdaaabac"
    assert tok.encode("aaabdaaabac") == [262]


def test_training_is_deterministic_and_restarts_from_scratch():
    first = BPETokenizer().train("hello world, hello there", vocab_size=270)
    tok = BPETokenizer().train("something else entirely", vocab_size=300)
    assert tok.train("hello world, hello there", vocab_size=270).merges == first.merges


def test_first_merge_is_the_most_frequent_pair_within_chunks(course_tok):
    counts = Counter()
    for chunk in split_chunks(course_text()):
        data = chunk.encode("utf-8")
        counts.update(pairwise(data))
    top = max(counts.values())
    assert next(iter(course_tok.merges)) == min(p for p, n in counts.items() if n == top)
    assert len(course_tok.merges) == 320 - 256
    for (left, right), new_id in course_tok.merges.items():
        assert left < new_id and right < new_id
        assert course_tok.vocab[new_id] == course_tok.vocab[left] + course_tok.vocab[right]


def test_merges_never_cross_chunk_boundaries():
    # "x" and "." are always neighbours, but in different chunks (letters | punctuation)
    tok = BPETokenizer().train("x.y x.y x.y " * 20, vocab_size=300)
    assert all(b"x." not in piece and b".y" not in piece for piece in tok.vocab.values())
    assert (ord("x"), ord(".")) not in tok.merges


@settings(max_examples=60, deadline=None)
@given(any_text)
def test_split_chunks_cover_the_text(text):
    assert "".join(split_chunks(text)) == text


# --- encode / decode -----------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(any_text)
def test_round_trip_on_arbitrary_unicode(course_tok, text):
    assert course_tok.decode(course_tok.encode(text)) == text
    assert course_tok.encode(text, num_merges=0) == utf8(text)


TRICKY = ["", "🙂👩‍👩‍👧", "naïve café", "e\u0301", "αβγ λ", "注意力机制",
          "\ud800x\udfff", " \n\t  ", "ﬁ ß İ", "12 345"]


@pytest.mark.parametrize("text", TRICKY)
def test_round_trip_on_tricky_strings(course_tok, text):
    assert course_tok.decode(course_tok.encode(text)) == text


def replay(tok: BPETokenizer, text: str, num_merges: int) -> list[int]:
    """Naive encoder: for each chunk, apply the first ``num_merges`` merges one after the other."""
    ids = []
    for chunk in split_chunks(text):
        chunk_ids = utf8(chunk)
        for pair, new_id in list(tok.merges.items())[:num_merges]:
            chunk_ids = merge_pair(chunk_ids, pair, new_id)
        ids += chunk_ids
    return ids


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="the cat tokenization attention.,é\n", max_size=80), st.integers(0, 64))
def test_encode_equals_replaying_merges_in_order(course_tok, text, k):
    assert course_tok.encode(text, num_merges=k) == replay(course_tok, text, k)
    assert course_tok.encode(text) == replay(course_tok, text, len(course_tok.merges))


def test_more_merges_never_give_more_tokens(course_tok):
    text = "Tokenization turns artificial intelligence into numbers."
    lengths = [len(course_tok.encode(text, num_merges=k)) for k in range(len(course_tok.merges) + 1)]
    assert lengths[0] == len(text.encode("utf-8"))
    assert all(x >= y for x, y in pairwise(lengths))
    assert lengths[-1] < lengths[0]


def test_tokens_are_the_decoded_pieces(course_tok):
    text = "the attention of a naïve café"
    pieces = course_tok.tokens(text)
    assert len(pieces) == len(course_tok.encode(text))
    assert b"".join(course_tok.vocab[i] for i in course_tok.encode(text)) == text.encode("utf-8")
    assert "".join(course_tok.tokens("the attention of a cafe")) == "the attention of a cafe"  # ASCII
    as_bytes = [bytes([x]).decode("utf-8", "replace") for x in utf8(text)]
    assert course_tok.tokens(text, num_merges=0) == as_bytes


def test_decode_of_partial_characters_shows_replacement():
    tok = BPETokenizer()
    assert tok.decode(utf8("é")[:1]) == "\ufffd"
    assert tok.decode(utf8("aé")) == "aé"


def test_save_load_round_trip(tmp_path, course_tok):
    path = tmp_path / "tok.bpe"
    course_tok.save(path)
    loaded = BPETokenizer.load(path)
    assert list(loaded.merges.items()) == list(course_tok.merges.items())
    assert loaded.vocab == course_tok.vocab
    text = "Attention is all you need — or is it?"
    assert loaded.encode(text) == course_tok.encode(text)
    assert not path.read_text(encoding="utf-8").startswith("\x80")  # text, not pickle


def test_bad_arguments_raise(tmp_path, course_tok):
    with pytest.raises(ValueError, match="vocab_size"):
        BPETokenizer().train("abc", vocab_size=255)
    with pytest.raises(TypeError, match="vocab_size"):
        BPETokenizer().train("abc", vocab_size=300.0)
    with pytest.raises(TypeError, match="text"):
        BPETokenizer().train(b"abc", vocab_size=300)
    with pytest.raises(ValueError, match="num_merges"):
        course_tok.encode("abc", num_merges=-1)
    with pytest.raises(ValueError, match="num_merges"):
        course_tok.encode("abc", num_merges=len(course_tok.merges) + 1)
    with pytest.raises(TypeError, match="num_merges"):
        course_tok.encode("abc", num_merges=1.5)
    with pytest.raises(ValueError, match="ids"):
        course_tok.decode([104, course_tok.vocab_size])
    with pytest.raises(ValueError, match="ids"):
        course_tok.decode([-1])
    with pytest.raises(TypeError, match="ids"):
        course_tok.decode([1.0])
    with pytest.raises(ValueError, match="token_id"):
        course_tok.piece(10_000)
    bad = tmp_path / "bad.txt"
    bad.write_text("not a tokenizer\n", encoding="utf-8")
    with pytest.raises(ValueError, match="path"):
        BPETokenizer.load(bad)
    bad.write_text("byte-level-bpe v1\n97 300\n", encoding="utf-8")  # refers to a later id
    with pytest.raises(ValueError, match="path"):
        BPETokenizer.load(bad)


# --- baselines -------------------------------------------------------------------------------------------

def test_char_tokenizer():
    tok = CharTokenizer().fit("hello, world")
    assert tok.chars == sorted(set("hello, world")) and tok.vocab_size == 9
    assert tok.encode("hello") == [tok.chars.index(ch) for ch in "hello"]
    assert tok.decode(tok.encode("world, hello")) == "world, hello"
    with pytest.raises(ValueError, match="text"):
        tok.encode("help")
    with pytest.raises(ValueError, match="ids"):
        tok.decode([9])


def test_word_tokenizer_from_a_word_list():
    tok = WordTokenizer(["the", "cat", "."])
    assert (tok.pad_id, tok.bos_id, tok.unk_id) == (0, 1, 2)
    assert tok.id_to_token == ["<pad>", "<bos>", "<unk>", "the", "cat", "."]
    assert tok.token_to_id["cat"] == 4 and tok.vocab_size == 6
    assert tok.encode("the dog.") == [3, 2, 5]  # unknown word -> <unk>, "." split off
    assert tok.decode([1, 3, 4, 5]) == "<bos> the cat ."
    assert tok.decode([1, 3, 4, 0], skip_specials=True) == "the cat"


def test_word_tokenizer_fit_orders_by_frequency():
    tok = WordTokenizer.fit("b a b c, c b")
    assert tok.id_to_token[3:] == ["b", "c", ",", "a"]  # 3, 2, then ties alphabetically (',' < 'a')
    assert WordTokenizer.fit("b a b c, c b", max_vocab=5).id_to_token[3:] == ["b", "c"]


def test_word_tokenizer_bad_arguments():
    with pytest.raises(ValueError, match="specials"):
        WordTokenizer(["a"], specials=("<pad>", "<bos>"))
    with pytest.raises(ValueError, match="words"):
        WordTokenizer(["a", "a"])
    with pytest.raises(ValueError, match="words"):
        WordTokenizer(["<unk>"])
    with pytest.raises(TypeError, match="words"):
        WordTokenizer("abc")
    with pytest.raises(ValueError, match="max_vocab"):
        WordTokenizer.fit("a b", max_vocab=3)
    with pytest.raises(ValueError, match="ids"):
        WordTokenizer(["a"]).decode([4])


# --- the fast trainer (Lecture 4): exactly the readable trainer's merges ---------------------------------

def lecture_1_training_text() -> str:
    """The text Lecture 1 trains on: the course text without every fifth paragraph."""
    paragraphs = course_text().split("\n\n")
    return "\n\n".join(p for i, p in enumerate(paragraphs) if i % 5 != 4)


AGREEMENT_TEXTS = {
    "classic": "aaabdaaabac",
    "empty": "",
    "one character": "a",
    "one pair": "ab",
    "one byte repeated": "aaaaaaaaaaaaaaaaa",  # overlapping (a, a) pairs: counted 16 times, merged 8 times
    "only ties": "ab cd ef gh ij",  # every pair occurs once: the smallest pair first, every step
    "punctuation only": "!!! ??? ... ,,, !?!?",
    "unicode": "naïve café, 注意力机制 🙂 👩‍👩‍👧 Αυτό είναι ελληνικά — “quotes” e\u0301 \ud800 " * 7,
    "whitespace": " \n\t  \n\n   x  \t",
    "tiny world": " ".join(f"the cat chased the mouse {i % 7} times ." for i in range(60)),
    "lecture 1": lecture_1_training_text(),
}


@pytest.mark.parametrize("name", AGREEMENT_TEXTS)
def test_fast_trainer_learns_the_readable_trainers_merges(name):
    text = AGREEMENT_TEXTS[name]
    sizes = (1024,) if name == "lecture 1" else (256, 257, 300, 1024)  # (smaller sizes are prefixes)
    for vocab_size in sizes:
        fast = BPETokenizer().train(text, vocab_size)
        readable = BPETokenizer().train_readable(text, vocab_size)
        assert list(fast.merges.items()) == list(readable.merges.items()), (name, vocab_size)
        assert fast.vocab == readable.vocab


def test_fast_trainer_keeps_lecture_1s_merges():
    # Lecture 1 stores outputs made with its 1,024-token tokenizer: pin a few of its merges by value
    tok = BPETokenizer().train(lecture_1_training_text(), vocab_size=1024)
    assert len(tok.merges) == 768
    assert tok.tokens(" artificial") == [" artificial"]
    assert " the" in [tok.piece(i) for i in list(tok.merges.values())[:10]]


@settings(max_examples=80, deadline=None)
@given(st.text(alphabet="ab é\n.", max_size=120), st.integers(256, 300))
def test_fast_equals_readable_on_random_small_alphabets(text, vocab_size):
    # a small alphabet makes ties and overlapping pairs (aaa, abab) common: where a wrong update shows
    fast = BPETokenizer().train(text, vocab_size).merges
    assert list(fast.items()) == list(BPETokenizer().train_readable(text, vocab_size).merges.items())


@settings(max_examples=30, deadline=None)
@given(any_text, st.integers(256, 280))
def test_fast_equals_readable_on_arbitrary_unicode(text, vocab_size):
    fast = BPETokenizer().train(text, vocab_size).merges
    assert list(fast.items()) == list(BPETokenizer().train_readable(text, vocab_size).merges.items())


def test_train_incremental_by_hand_and_without_modifying_inputs():
    # "aaab" twice and "ab" once: (a,a) = 2 * 2 = 4 beats (a,b) = 2 + 1 = 3, so (a,a) -> 256 first;
    # "aaab" is then [256, a, b]: (a,b) = 3 beats (256,a) = 2 -> 257; last, (256,257) = 2 -> 258
    words, freqs = [[a, a, a, b], [a, b]], [2, 1]
    merges = train_incremental(words, freqs, num_merges=10)
    assert list(merges.items()) == [((a, a), 256), ((a, b), 257), ((256, 257), 258)]
    assert words == [[a, a, a, b], [a, b]] and freqs == [2, 1]
    assert train_incremental([], [], num_merges=5) == {}
    assert train_incremental([[a]], [100], num_merges=5) == {}  # no pairs at all
    assert list(train_incremental([[c, d], [a, b]], [1, 1], num_merges=1)) == [(a, b)]  # tie: smallest
    with pytest.raises(ValueError):
        train_incremental([[a, b]], [1, 2], num_merges=1)  # one frequency per word


def test_train_equals_readable_on_generated_text_with_many_merges():
    import random

    rng = random.Random(4)
    syllables = ["ka", "ri", "to", "ne", "su", "mo", "la", "é", "注"]
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(300)]
    text = " ".join(rng.choice(words) for _ in range(3000))
    fast = BPETokenizer().train(text, 700)
    assert list(fast.merges.items()) == list(BPETokenizer().train_readable(text, 700).merges.items())
    assert fast.decode(fast.encode(text)) == text


# --- Lecture 4: what a merge changes, unknown words --------------------------------------------------------

from utils.tokenization import compare_tokenizers, pair_count_changes, unknown_rate  # noqa: E402


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 3), max_size=20), st.tuples(st.integers(0, 3), st.integers(0, 3)))
def test_pair_count_changes_turn_old_counts_into_new_ones(ids, pair):
    changes = pair_count_changes(ids, pair, 9)
    before = Counter(get_pair_counts(ids))
    before.update(changes)
    after = {p: n for p, n in before.items() if n}
    assert after == get_pair_counts(merge_pair(ids, pair, 9))
    assert all(changes.values())  # only what changed


def test_pair_count_changes_by_hand():
    assert pair_count_changes([1, 1, 1], (1, 1), 5) == {(1, 1): -2, (5, 1): 1}  # overlapping pairs
    assert pair_count_changes([1, 2, 1, 2], (1, 2), 5) == {(1, 2): -2, (2, 1): -1, (5, 5): 1}
    assert pair_count_changes([3, 4], (1, 2), 5) == {}


def test_unknown_rate_and_compare_tokenizers_by_hand(course_tok):
    words = WordTokenizer(["the", "cat", "."])
    chars = CharTokenizer().fit("the cat")
    assert unknown_rate(words, "the dog sat .") == 0.5
    assert unknown_rate(chars, "the dog") == pytest.approx(3 / 7)  # d, o and g
    assert unknown_rate(course_tok, "cryptocurrency 🙂") == 0.0 and unknown_rate(words, "") == 0.0
    pieces = compare_tokenizers("the dog", {"word": words, "char": chars, "bpe": course_tok})
    assert pieces["word"] == [("the", False), ("dog", True)]
    assert [c for c, unknown in pieces["char"] if unknown] == ["d", "o", "g"]
    assert "".join(p for p, _ in pieces["bpe"]) == "the dog" and not any(u for _, u in pieces["bpe"])
    with pytest.raises(TypeError, match="tokenizer"):
        unknown_rate("not a tokenizer", "text")
