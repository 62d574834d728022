"""Prompt formats (Lecture 3, Q13): the tiny multi-task data of the prompt-engineering section.

Short inputs of distinct letters (``"c a b"``) and three tasks whose answers look different: write the
letters in capitals (``"C A B"``), replace each by the next letter of the alphabet (``"d b c"``), write
each letter's place in the alphabet (``"3 1 2"``). One format is used everywhere, so that the model,
the notebook and the exercise agree on it token for token::

    next : c a b = d b c .                        an instruction (zero-shot)
    d e f = e f g . c a b = d b c .               worked examples, no instruction (few-shot)

>>> few_shot_prompt([("d e f", "e f g")], "c a b")
'd e f = e f g . c a b ='
>>> TaskPrompt("upper", "c a b", instruction="upper").text
'upper : c a b = C A B .'
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "PROMPT_TASKS", "AMBIGUOUS_INSTRUCTIONS", "INSTRUCTION_MARK", "ANSWER_MARK", "END_MARK", "apply_task",
    "task_inputs", "prompt_vocabulary", "few_shot_prompt", "TaskPrompt", "instruction_examples",
    "answer_mask", "exact_match", "verbalizer_scores", "last_position_log_probs",
]


# Each task maps the input letters to the answer tokens. Their answers look different on purpose
# (capitals, small letters, numbers), which is what worked examples convey best (Min et al. 2022).
# All three work letter by letter: a tiny model learns them in a few hundred steps (reversing the
# order, tried first, takes a tiny model much longer to learn).
PROMPT_TASKS: dict[str, Callable[[Sequence[str]], list[str]]] = {
    "upper": lambda letters: [c.upper() for c in letters],
    "next": lambda letters: [chr(ord(c) + 1) for c in letters],  # a -> b, b -> c, ...
    "number": lambda letters: [str(ord(c) - ord("a") + 1) for c in letters],  # a -> 1, b -> 2, ...
}

# A vague instruction: a word that fits several tasks (the training data uses it for each of them).
AMBIGUOUS_INSTRUCTIONS: dict[str, tuple[str, ...]] = {"change": ("upper", "next")}

INSTRUCTION_MARK, ANSWER_MARK, END_MARK = ":", "=", "."


def _check_words(name: str, text: object) -> list[str]:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str of space-separated tokens, got {type(text).__name__}")
    words = text.split()
    if not words:
        raise ValueError(f"{name} must contain at least one token, got {text!r}")
    marks = [w for w in words if w in (INSTRUCTION_MARK, ANSWER_MARK, END_MARK)]
    if marks:
        raise ValueError(f"{name} must not contain the format marks ':', '=', '.', got {text!r}")
    return words


def apply_task(task: str, query: str) -> str:
    """The correct answer of ``task`` for ``query`` (space-separated letters), as space-separated tokens.

    >>> apply_task("upper", "c a b"), apply_task("next", "c a b"), apply_task("number", "c a b")
    ('C A B', 'd b c', '3 1 2')
    """
    if task not in PROMPT_TASKS:
        raise ValueError(f"task must be one of {sorted(PROMPT_TASKS)}, got {task!r}")
    letters = _check_words("query", query)
    bad = [w for w in letters if len(w) != 1 or not "a" <= w <= "y"]
    if bad:
        raise ValueError(f"query must be lower-case letters a-y separated by spaces (z has no next letter), "
                         f"got {bad}")
    return " ".join(PROMPT_TASKS[task](letters))


def task_inputs(letters: str = "abcdefgh", length: int = 3) -> list[str]:
    """Every input of ``length`` distinct letters drawn from ``letters``, in a fixed order.

    >>> inputs = task_inputs("abc", 2)
    >>> len(inputs), inputs[:3]
    (6, ['a b', 'a c', 'b a'])
    """
    if not isinstance(letters, str) or len(set(letters)) != len(letters) or not letters.isalpha() \
            or not letters.islower():
        raise ValueError(f"letters must be a str of distinct lower-case letters, got {letters!r}")
    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= len(letters):
        raise ValueError(f"length must be an int between 1 and {len(letters)}, got {length!r}")
    return [" ".join(p) for p in itertools.permutations(letters, length)]


def prompt_vocabulary(letters: str = "abcdefgh") -> list[str]:
    """Every token the prompt tasks can produce over ``letters``: the letters, their capitals, their
    numbers, the task words and the three marks.

    >>> prompt_vocabulary("ac")
    ['a', 'c', 'b', 'd', 'A', 'C', '1', '3', 'upper', 'next', 'number', 'change', ':', '=', '.']
    """
    task_inputs(letters, 1)  # validates the letters
    answers = {task: [apply_task(task, c) for c in letters] for task in PROMPT_TASKS}
    small = list(dict.fromkeys([*letters, *answers["next"]]))  # the inputs, then the new next letters
    return [*small, *answers["upper"], *answers["number"], *PROMPT_TASKS, *AMBIGUOUS_INSTRUCTIONS,
            INSTRUCTION_MARK, ANSWER_MARK, END_MARK]


def few_shot_prompt(examples: Sequence[tuple[str, str]], query: str, instruction: str | None = None) -> str:
    """The prompt in the course's format: ``[instruction :] (input = output .)* query =``.

    ``examples`` are ``(input, output)`` pairs of space-separated tokens; the model's answer should
    follow the final ``=``. With no examples and an instruction this is a zero-shot prompt; with
    examples and no instruction, a few-shot prompt; with neither, a vague one.

    >>> few_shot_prompt([], "c a b", instruction="next")
    'next : c a b ='
    >>> few_shot_prompt([("a b c", "C A B"), ("d e f", "D E F")], "c a b")
    'a b c = C A B . d e f = D E F . c a b ='
    """
    if isinstance(examples, (str, bytes)):
        raise TypeError("examples must be a list of (input, output) pairs, not one str")
    parts = []
    if instruction is not None:
        parts += [" ".join(_check_words("instruction", instruction)), INSTRUCTION_MARK]
    for pair in examples:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"each example must be an (input, output) pair, got {pair!r}")
        example_input, example_output = pair
        parts += [" ".join(_check_words("example input", example_input)), ANSWER_MARK,
                  " ".join(_check_words("example output", example_output)), END_MARK]
    parts += [" ".join(_check_words("query", query)), ANSWER_MARK]
    return " ".join(parts)


@dataclass(frozen=True)
class TaskPrompt:
    """One prompt of the multi-task data: the task that is meant, what the prompt shows of it, the query.

    ``instruction`` is the word written before ``:`` (the task's own name, an ambiguous word, or None);
    ``examples`` are worked ``(input, output)`` pairs of the same task.
    """

    task: str
    query: str
    instruction: str | None = None
    examples: tuple[tuple[str, str], ...] = ()

    @property
    def prompt(self) -> str:
        """What the model reads, up to and including the final ``=``."""
        return few_shot_prompt(self.examples, self.query, self.instruction)

    @property
    def answer(self) -> str:
        """The correct completion (without the closing ``.``)."""
        return apply_task(self.task, self.query)

    @property
    def text(self) -> str:
        """The whole training sequence: prompt, answer, ``.``."""
        return f"{self.prompt} {self.answer} {END_MARK}"


def instruction_examples(
    n: int,
    inputs: Sequence[str],
    instruction_share: float = 0.5,
    ambiguous_share: float = 0.2,
    max_shots: int = 3,
    tasks: Sequence[str] = tuple(PROMPT_TASKS),
    seed: int = 0,
) -> list[TaskPrompt]:
    """``n`` random training prompts over ``inputs`` (reproducible by ``seed``), in two formats:

    - with probability ``instruction_share`` an instruction and no example (zero-shot format); the
      instruction is the task's name, or (with probability ``ambiguous_share``, for the tasks an
      ambiguous word fits) that ambiguous word;
    - otherwise 1 to ``max_shots`` worked examples of the same task and no instruction (few-shot format).

    The task is uniform over ``tasks``; queries and examples are drawn from ``inputs`` only, so the
    notebook can keep other inputs for testing.

    >>> data = instruction_examples(4, task_inputs("abcd"), seed=1)
    >>> [p.task for p in data] == [p.task for p in instruction_examples(4, task_inputs("abcd"), seed=1)]
    True
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    if isinstance(inputs, str) or len(inputs) == 0:
        raise ValueError("inputs must be a non-empty list of queries such as 'c a b'")
    for name, share in (("instruction_share", instruction_share), ("ambiguous_share", ambiguous_share)):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {share}")
    if isinstance(max_shots, bool) or not isinstance(max_shots, int) or max_shots < 1:
        raise ValueError(f"max_shots must be an int >= 1, got {max_shots!r}")
    unknown = [t for t in tasks if t not in PROMPT_TASKS]
    if not tasks or unknown:
        raise ValueError(f"tasks must be a non-empty list of {sorted(PROMPT_TASKS)}, got {list(tasks)}")
    rng = random.Random(seed)  # private generator: never touches the global random state
    data = []
    for _ in range(n):
        task = rng.choice(list(tasks))
        query = rng.choice(inputs)
        if rng.random() < instruction_share:
            vague = [word for word, fits in AMBIGUOUS_INSTRUCTIONS.items() if task in fits]
            instruction = rng.choice(vague) if vague and rng.random() < ambiguous_share else task
            data.append(TaskPrompt(task, query, instruction=instruction))
        else:
            shots = rng.randint(1, max_shots)
            examples = tuple((x, apply_task(task, x)) for x in (rng.choice(inputs) for _ in range(shots)))
            data.append(TaskPrompt(task, query, examples=examples))
    return data


def answer_mask(tokens: Sequence[str], last_only: bool = False) -> list[bool]:
    """Which tokens are answers: each token after an ``=`` up to and including the next ``.``.

    These are the positions a model is trained to predict (the prompt itself is given). With
    ``last_only`` only the final answer counts (for testing: the examples' answers are in the prompt).

    >>> answer_mask("x : a b = b a . c d = d c .".split())
    [False, False, False, False, False, True, True, True, False, False, False, True, True, True]
    >>> answer_mask("a b = b a . c d = d c .".split(), last_only=True)
    [False, False, False, False, False, False, False, False, False, True, True, True]
    """
    if isinstance(tokens, str):
        raise TypeError("tokens must be a list of tokens, not one str (use text.split())")
    mask, inside = [], False
    for token in tokens:
        mask.append(inside)
        if token == ANSWER_MARK:
            inside = True
        elif token == END_MARK:
            inside = False
    if last_only:
        starts = [i for i, token in enumerate(tokens) if token == ANSWER_MARK]
        mask = [m and bool(starts) and i > starts[-1] for i, m in enumerate(mask)]
    return mask


def exact_match(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Per row, whether the most likely token is right at every position that counts: ``logits
    (B, T, V)``, ``targets (B, T)`` with ``ignore_index`` where nothing is scored -> ``BoolTensor (B,)``.

    With teacher forcing (the correct answer fed in), "right at every answer position" is the same as
    "greedy decoding writes exactly the answer": if every step's argmax is right, greedy decoding feeds
    itself the same tokens, and the first wrong argmax is a wrong greedy token.

    >>> logits = torch.tensor([[[0.0, 1.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])    # (B=2, T=2, V=2)
    >>> exact_match(logits, torch.tensor([[1, 0], [1, 0]])).tolist()
    [True, False]
    """
    if not isinstance(logits, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise TypeError("logits and targets must be torch.Tensors")
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(f"logits must be (B, T, V) and targets (B, T), got {tuple(logits.shape)} and "
                         f"{tuple(targets.shape)}")
    scored = targets != ignore_index  # (B, T)
    if not scored.any(dim=1).all():
        raise ValueError("every row of targets needs at least one scored position (not ignore_index)")
    right = logits.argmax(dim=-1) == targets  # (B, T)
    return (right | ~scored).all(dim=1)


# --- Lecture 9 (Q41): zero-shot classification by comparing continuations ------------------------------
# A language model that never saw a label can still classify: end the text with a prompt after which the
# class shows in the next word ("... overall it was"), and compare how likely the model finds each class's
# words there (GPT-2 did this zero-shot, Radford et al. 2019; the map from classes to words is PET's
# "verbalizer", Schick & Schütze 2021).

def verbalizer_scores(next_log_probs: torch.Tensor, label_words: Sequence[Sequence[int]]) -> torch.Tensor:
    """Score every class by its words: ``(N, C)``, entry
    ``[n, c] = log Σ_{w ∈ label_words[c]} p(w | text n)``, from the model's next-token log-probabilities
    ``next_log_probs (N, V)`` after each prompt. The predicted class is the argmax; with one word per class
    it is the comparison of two continuations.

    >>> log_p = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.4]]))
    >>> verbalizer_scores(log_p, [[0, 1], [3]]).exp()              # p(w0) + p(w1), p(w3)
    tensor([[0.3000, 0.4000]])
    """
    if not isinstance(next_log_probs, torch.Tensor) or next_log_probs.dim() != 2:
        raise TypeError("next_log_probs must be a (N, V) tensor of log-probabilities")
    if isinstance(label_words, (str, bytes)) or len(label_words) < 2:
        raise ValueError("label_words must list the word ids of at least two classes")
    V = next_log_probs.shape[1]
    scores = []
    for c, ids in enumerate(label_words):
        ids = list(ids)
        if not ids or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < V for i in ids):
            raise ValueError(f"label_words[{c}] must be a non-empty list of token ids in [0, {V}), got {ids}")
        scores.append(next_log_probs[:, ids].logsumexp(dim=1))  # (N,): log of the words' total probability
    return torch.stack(scores, dim=1)


@torch.no_grad()
def last_position_log_probs(model: torch.nn.Module, prompts: Sequence[Sequence[int]], pad_id: int,
                            batch_size: int = 256) -> torch.Tensor:
    """The model's next-token log-probabilities after each prompt (a list of token-id lists of any
    lengths): ``(N, V)``, float32, on the CPU. Prompts are right-padded with ``pad_id`` and read at their
    own last position; a causal model never looks at the padding after that position. The model's mode
    is restored.

    >>> class Uniform(torch.nn.Module):
    ...     def forward(self, idx): return torch.zeros(*idx.shape, 4)
    >>> last_position_log_probs(Uniform(), [[1, 2], [3]], pad_id=0).exp()
    tensor([[0.2500, 0.2500, 0.2500, 0.2500],
            [0.2500, 0.2500, 0.2500, 0.2500]])
    """
    if isinstance(prompts, (str, bytes)) or not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("prompts must be a non-empty list of non-empty token-id lists")
    device = next(iter(model.parameters()), torch.empty(0)).device
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, len(prompts), batch_size):
            chunk = [list(p) for p in prompts[start:start + batch_size]]
            width = max(len(p) for p in chunk)
            ids = torch.tensor([p + [pad_id] * (width - len(p)) for p in chunk], device=device)  # (b, T)
            last = torch.tensor([len(p) - 1 for p in chunk], device=device)  # (b,)
            logits = model(ids)[torch.arange(len(chunk), device=device), last]  # (b, V)
            out.append(torch.log_softmax(logits.float(), dim=-1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)
