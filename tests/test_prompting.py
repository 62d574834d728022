"""utils.prompting: the prompt formats and multi-task data of Q13, by hand and against greedy decoding."""

import pytest
import torch

from utils.prompting import (
    AMBIGUOUS_INSTRUCTIONS,
    PROMPT_TASKS,
    TaskPrompt,
    answer_mask,
    apply_task,
    exact_match,
    few_shot_prompt,
    instruction_examples,
    prompt_vocabulary,
    task_inputs,
)
from utils.tokenization import WordTokenizer


def test_tasks_by_hand():
    assert apply_task("next", "c a h") == "d b i"
    assert apply_task("upper", "c a b") == "C A B"
    assert apply_task("number", "c a h") == "3 1 8"
    assert apply_task("number", "y") == "25"
    with pytest.raises(ValueError, match="task must be one of"):
        apply_task("sort", "c a b")
    with pytest.raises(ValueError, match="format marks"):
        apply_task("next", "c = b")
    with pytest.raises(ValueError, match="lower-case letters"):
        apply_task("number", "c A b")
    with pytest.raises(ValueError, match="no next letter"):
        apply_task("next", "z")


def test_task_inputs_are_all_distinct_letter_sequences():
    inputs = task_inputs("abcdefgh", 3)
    assert len(inputs) == 8 * 7 * 6 == len(set(inputs))  # permutations: n! / (n - k)!
    assert all(len(set(x.split())) == 3 for x in inputs)
    with pytest.raises(ValueError, match="letters"):
        task_inputs("aab")
    with pytest.raises(ValueError, match="length"):
        task_inputs("abc", 4)


def test_few_shot_prompt_format_by_hand():
    assert few_shot_prompt([], "c a b") == "c a b ="
    assert few_shot_prompt([], "c a b", instruction="upper") == "upper : c a b ="
    assert (few_shot_prompt([("a b c", "b c d"), ("d e f", "e f g")], "c a b", instruction="next")
            == "next : a b c = b c d . d e f = e f g . c a b =")
    assert few_shot_prompt([], "  c   a b ") == "c a b ="  # whitespace is normalised
    with pytest.raises(TypeError, match="examples"):
        few_shot_prompt("a b = b a", "c a")
    with pytest.raises(ValueError, match="pair"):
        few_shot_prompt([("a b",)], "c a")
    with pytest.raises(ValueError, match="query"):
        few_shot_prompt([], "")


def test_every_generated_token_is_in_the_vocabulary_and_round_trips():
    tok = WordTokenizer(prompt_vocabulary())
    data = instruction_examples(300, task_inputs(), seed=3)
    for p in data:
        ids = tok.encode(p.text)
        assert tok.unk_id not in ids
        assert tok.decode(ids) == p.text
    assert len(prompt_vocabulary()) == len(set(prompt_vocabulary()))


def test_instruction_examples_mix_and_consistency():
    inputs = task_inputs("abcdef")[:40]
    data = instruction_examples(2000, inputs, instruction_share=0.5, ambiguous_share=0.2, max_shots=3, seed=0)
    assert data == instruction_examples(2000, inputs, instruction_share=0.5, ambiguous_share=0.2, max_shots=3,
                                        seed=0)  # reproducible
    with_instruction = [p for p in data if p.instruction is not None]
    assert all(not p.examples for p in with_instruction)  # zero-shot format: no examples
    assert all(1 <= len(p.examples) <= 3 for p in data if p.instruction is None)
    assert abs(len(with_instruction) / len(data) - 0.5) < 0.05
    assert {p.task for p in data} == set(PROMPT_TASKS)
    for p in data:
        assert p.query in inputs and all(x in inputs for x, _ in p.examples)
        assert all(y == apply_task(p.task, x) for x, y in p.examples)  # examples show the same task
        if p.instruction in AMBIGUOUS_INSTRUCTIONS:
            assert p.task in AMBIGUOUS_INSTRUCTIONS[p.instruction]
        elif p.instruction is not None:
            assert p.instruction == p.task
    vague = [p for p in with_instruction if p.instruction in AMBIGUOUS_INSTRUCTIONS]
    fits = [p for p in with_instruction if any(p.task in t for t in AMBIGUOUS_INSTRUCTIONS.values())]
    assert abs(len(vague) / len(fits) - 0.2) < 0.05
    with pytest.raises(ValueError, match="tasks"):
        instruction_examples(3, inputs, tasks=["sort"])
    with pytest.raises(ValueError, match="instruction_share"):
        instruction_examples(3, inputs, instruction_share=1.5)


def test_task_prompt_text():
    p = TaskPrompt("next", "c a b", examples=(("a b d", "b c e"),))
    assert p.prompt == "a b d = b c e . c a b ="
    assert p.answer == "d b c" and p.text == "a b d = b c e . c a b = d b c ."


def test_answer_mask_by_hand():
    tokens = "<bos> upper : c a = C A .".split()
    assert answer_mask(tokens) == [False] * 6 + [True, True, True]
    few = "<bos> a b = B A . c d = D C .".split()
    assert answer_mask(few) == [False, False, False, False, True, True, True, False, False, False, True, True,
                                True]
    assert answer_mask(few, last_only=True) == [False] * 10 + [True, True, True]
    assert answer_mask("a b".split(), last_only=True) == [False, False]
    with pytest.raises(TypeError, match="tokens"):
        answer_mask("a b = b a .")


def test_exact_match_equals_greedy_decoding():
    """The oracle: decode greedily token by token with a fixed random 'model', compare with the answer."""
    torch.manual_seed(0)
    V, T = 5, 6
    table = torch.randn(V, V)  # a bigram "model": the logits of the next token depend on the last token

    def model(ids):  # (B, T) -> (B, T, V)
        return table[ids]

    prompt = torch.tensor([[1, 2, 3]])
    greedy = prompt
    for _ in range(T - 3):
        greedy = torch.cat([greedy, model(greedy)[:, -1].argmax(-1, keepdim=True)], dim=1)
    target_seq = greedy.clone()
    wrong_seq = greedy.clone()
    wrong_seq[0, -1] = (wrong_seq[0, -1] + 1) % V
    for sequence, expected in ((target_seq, True), (wrong_seq, False)):
        inputs, targets = sequence[:, :-1], sequence[:, 1:].clone()
        targets[:, :2] = -100  # only the generated part is scored
        assert exact_match(model(inputs), targets).tolist() == [expected]
    with pytest.raises(ValueError, match="scored"):
        exact_match(torch.zeros(1, 2, 3), torch.full((1, 2), -100))
    with pytest.raises(ValueError, match=r"\(B, T, V\)"):
        exact_match(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))
