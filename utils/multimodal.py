"""Images as tokens: how one transformer reads pictures and words alike (Lectures 4 and 7).

A Vision Transformer (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words") cuts an image into
non-overlapping ``p × p`` patches, flattens each patch into a vector and treats the row of vectors like a
sentence of tokens: a linear layer maps each to ``d_model``, position embeddings say where it was, and the
same attention blocks as a language model do the rest. A 224 × 224 image at 16 × 16 patches is
``(224 / 16)² = 196`` tokens.

>>> images = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)   # (B, C, H, W)
>>> tuple(image_to_patches(images, 2).shape)             # (B, N = (4/2)·(4/2), C·p·p = 3·2·2)
(2, 4, 12)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn

from ._checkpoint import cpu_state_dict, loss_history, read_checkpoint, write_checkpoint
from ._validation import check_positive_int
from .data import (
    BACKGROUND_RGB,
    COLOUR_NAMES,
    COLUMN_NAMES,
    SHAPE_NAMES,
    PictureQuestion,
    ShapeObject,
    picture_answers,
    picture_questions,
    picture_vocabulary,
    render_scene,
)
from .models import Block, GPTConfig, _check_token_ids, _init_like_gpt2, _run_blocks
from .tokenization import WordTokenizer
from .training import History, train

__all__ = ["image_to_patches", "num_patches", "toy_image", "MultimodalConfig", "PatchEmbedding",
           "PictureQuestionModel", "centred_images", "picture_tokenizer", "encode_words",
           "PictureQuestionBatch",
           "QUESTION_LENGTH", "encode_picture_questions", "answer_questions", "accuracy_by_kind", "PictureQA",
           "VQA_CHECKPOINT", "vqa_config", "train_picture_question_model", "save_picture_question_model",
           "picture_question_model", "patch_attention", "BagOfWordsText", "ContrastiveImageText",
           "zero_shot_classify", "single_object_scenes", "ShapeDrawer"]


def num_patches(height: int, width: int, patch_size: int) -> int:
    """How many ``patch_size × patch_size`` tokens an image of ``height × width`` pixels becomes.

    >>> num_patches(224, 224, 16)                        # ViT-Base/16 on ImageNet
    196
    """
    for name, value in (("height", height), ("width", width), ("patch_size", patch_size)):
        check_positive_int(name, value)
    _check_divides(height, width, patch_size)
    return (height // patch_size) * (width // patch_size)


def _check_divides(height: int, width: int, patch_size: int) -> None:
    if height % patch_size or width % patch_size:
        raise ValueError(f"patch_size={patch_size} must divide the image's height and width (non-overlapping "
                         f"patches), got H={height}, W={width}")


def image_to_patches(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``images (B, C, H, W)`` -> ``patches (B, N, C·p·p)``: the non-overlapping ``p × p`` patches in
    row-major order (left to right, then top to bottom), each flattened channel-first, the order of
    ``F.unfold(images, p, stride=p).transpose(1, 2)``. ``H`` or ``W`` not divisible by ``p`` is an error.

    >>> image = torch.tensor([[[[1., 2., 3., 4.], [5., 6., 7., 8.]]]])   # (1, 1, 2, 4): two 2x2 patches
    >>> image_to_patches(image, 2).tolist()
    [[[1.0, 2.0, 5.0, 6.0], [3.0, 4.0, 7.0, 8.0]]]
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor of shape (B, C, H, W), got {type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(f"images must have shape (B, C, H, W), got {tuple(images.shape)}")
    check_positive_int("patch_size", patch_size)
    B, C, H, W = images.shape
    _check_divides(H, W, patch_size)
    p = patch_size
    patches = images.reshape(B, C, H // p, p, W // p, p)  # (B, C, H, W) -> (B, C, rows, p, cols, p)
    patches = patches.permute(0, 2, 4, 1, 3, 5)  # -> (B, rows, cols, C, p, p): one patch per (row, col)
    return patches.reshape(B, (H // p) * (W // p), C * p * p)  # -> (B, N, C·p·p)


# --- Lecture 4: a picture to cut into patches -----------------------------------------------------------

def toy_image(height: int = 224, width: int = 224) -> torch.Tensor:
    """A small drawn landscape ``(3, height, width)`` with values in [0, 1]: a sky that darkens upwards,
    a sun, green hills and a red house, computed from coordinates (no file, no randomness), so that its
    patches differ from each other as a photo's would.

    >>> image = toy_image(32, 48)
    >>> tuple(image.shape), bool(image.min() >= 0), bool(image.max() <= 1)
    ((3, 32, 48), True, True)
    """
    check_positive_int("height", height)
    check_positive_int("width", width)
    y = torch.linspace(0, 1, height)[:, None].expand(height, width)  # (H, W): 0 at the top
    x = torch.linspace(0, 1, width)[None, :].expand(height, width)  # (H, W): 0 at the left
    image = torch.stack([0.35 + 0.4 * y, 0.55 + 0.35 * y, 0.95 - 0.1 * y])  # (3, H, W): the sky
    sun = (x - 0.78) ** 2 + (y - 0.22) ** 2 < 0.01
    hills = y > 0.62 + 0.08 * torch.sin(6.0 * x)
    house = (x > 0.2) & (x < 0.42) & (y > 0.5) & (y < 0.75)
    roof = (y <= 0.5) & (y > 0.36 + 0.6 * (x - 0.31).abs()) & (x > 0.17) & (x < 0.45)
    for mask, colour in ((sun, (1.0, 0.85, 0.2)), (hills, (0.25, 0.6, 0.25)), (house, (0.8, 0.25, 0.2)),
                         (roof, (0.45, 0.2, 0.15))):
        image[:, mask] = torch.tensor(colour)[:, None]
    return image


# --- Lecture 7: one transformer over patch tokens and word tokens (Q33) --------------------------------
# A unified multimodal model in miniature: the picture becomes patch tokens (a linear map of each patch,
# as ViT does), the question becomes word tokens, and one stack of the course's transformer blocks reads
# both at once, every token attending to every other (no mask). The answer is read at the last token.

@dataclass
class MultimodalConfig:
    """The sizes of a ``PictureQuestionModel``: the picture (``image_size`` square, ``channels``), its
    ``patch_size``, the longest question (``max_words``), the word and answer vocabularies and the
    transformer's width, heads and depth."""

    vocab_size: int
    n_answers: int
    image_size: int = 24
    patch_size: int = 8
    channels: int = 3
    max_words: int = 8
    d_model: int = 32
    n_heads: int = 4
    n_layers: int = 2

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_answers", "image_size", "patch_size", "channels", "max_words",
                     "d_model", "n_heads", "n_layers"):
            check_positive_int(name, getattr(self, name))
        _check_divides(self.image_size, self.image_size, self.patch_size)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model must be divisible by n_heads, got d_model={self.d_model}, "
                             f"n_heads={self.n_heads}")

    @property
    def n_patches(self) -> int:
        return num_patches(self.image_size, self.image_size, self.patch_size)

    @property
    def patch_dim(self) -> int:
        return self.channels * self.patch_size**2


class PatchEmbedding(nn.Module):
    """``images (B, C, H, W)`` -> patch tokens ``(B, N, d_model)``: each flattened patch mapped by one linear
    layer (ViT, Dosovitskiy et al. 2021, eq. 1), plus where the patch was: a learned vector for its row
    plus one for its column (the "2-D" position embedding of ViT's appendix D.4, which they found as good
    as one learned vector per patch; with rows and columns apart, "which column?" is easy to read off).

    >>> embed = PatchEmbedding(image_size=8, patch_size=4, channels=3, d_model=16)
    >>> tuple(embed(torch.rand(2, 3, 8, 8)).shape)          # (B, N = 2·2 patches, d_model)
    (2, 4, 16)
    """

    def __init__(self, image_size: int, patch_size: int, channels: int, d_model: int) -> None:
        super().__init__()
        for name, value in (("image_size", image_size), ("patch_size", patch_size), ("channels", channels),
                            ("d_model", d_model)):
            check_positive_int(name, value)
        _check_divides(image_size, image_size, patch_size)
        self.image_size, self.patch_size, self.channels = image_size, patch_size, channels
        self.grid = image_size // patch_size
        self.proj = nn.Linear(channels * patch_size**2, d_model)
        self.row_emb = nn.Embedding(self.grid, d_model)
        self.col_emb = nn.Embedding(self.grid, d_model)

    def positions(self) -> torch.Tensor:
        """The position vector of every patch, row-major: ``(N, d_model)``."""
        rows = torch.arange(self.grid, device=self.row_emb.weight.device)
        return (self.row_emb(rows)[:, None, :] + self.col_emb(rows)[None, :, :]).reshape(self.grid**2, -1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        expected = (self.channels, self.image_size, self.image_size)
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or tuple(images.shape[1:]) != expected:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images must have shape (B, {', '.join(map(str, expected))}), got {shape}")
        patches = image_to_patches(images, self.patch_size)  # (B, N, C·p·p)
        return self.proj(patches) + self.positions()  # (B, N, d_model) + (N, d_model)


class PictureQuestionModel(nn.Module):
    """One transformer over a picture's patch tokens followed by a question's word tokens:
    ``forward(images (B, C, H, W), words (B, T))`` -> answer logits ``(B, n_answers)``, read from the hidden
    state of the last word (the question mark), which can attend to every patch and every word.

    Words get a token embedding plus a learned position embedding of their own, so a patch and a word are
    told apart by where they sit in the sequence. Pad questions on the left to one length: the last
    position must hold the last word. ``return_attention=True`` also returns each layer's attention
    weights ``(B, H, N + T, N + T)``: the last row, first N columns, is where the answer looked in the
    picture.

    >>> config = MultimodalConfig(vocab_size=10, n_answers=3, image_size=8, patch_size=4, max_words=5)
    >>> model = PictureQuestionModel(config)
    >>> images, words = torch.rand(2, 3, 8, 8), torch.ones(2, 5, dtype=torch.long)
    >>> logits, attention = model(images, words, return_attention=True)
    >>> tuple(logits.shape), tuple(attention[-1].shape)       # 4 patches + 5 words = 9 tokens
    ((2, 3), (2, 4, 9, 9))
    """

    def __init__(self, config: MultimodalConfig) -> None:
        super().__init__()
        if not isinstance(config, MultimodalConfig):
            raise TypeError(f"config must be a MultimodalConfig, got {type(config).__name__}")
        self.config = config
        block_config = GPTConfig(vocab_size=config.vocab_size, block_size=config.n_patches + config.max_words,
                                 d_model=config.d_model, n_heads=config.n_heads, n_layers=config.n_layers)
        self.patch_embed = PatchEmbedding(config.image_size, config.patch_size, config.channels,
                                          config.d_model)
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.word_pos_emb = nn.Embedding(config.max_words, config.d_model)
        self.blocks = nn.ModuleList(Block(block_config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.n_answers)
        _init_like_gpt2(self, [layer for b in self.blocks for layer in (b.attn.out_proj, b.mlp[2])])

    def forward(self, images: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
                words: torch.Tensor | None = None,
                return_attention: bool = False) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """``images (B, C, H, W)`` and ``words (B, T)`` -> answer logits ``(B, n_answers)``. The pair may also
        come as one argument ``(images, words)``, as ``utils.training.train`` passes a batch's inputs."""
        if words is None and isinstance(images, (tuple, list)) and len(images) == 2:
            images, words = images

        B, T = _check_token_ids(words, self.config.vocab_size, self.config.max_words, name="words",
                                max_len_name="max_words")
        if images.shape[0] != B:
            raise ValueError(f"images and words must hold the same number of examples, got {images.shape[0]} "
                             f"and {B}")
        patches = self.patch_embed(images)  # (B, N, C)
        tokens = self.tok_emb(words) + self.word_pos_emb(torch.arange(T, device=words.device))  # (B, T, C)
        x = torch.cat([patches, tokens], dim=1)  # (B, N + T, C): one sequence, both modalities
        x, attention = _run_blocks(self.blocks, x, None, return_attention)  # (B, N + T, C)
        logits = self.head(self.ln_f(x[:, -1]))  # the last word's state -> (B, n_answers)
        return (logits, attention) if return_attention else logits


def centred_images(scenes: Sequence[Sequence[ShapeObject]]) -> torch.Tensor:
    """``(N, 3, H, W)``: each scene rendered (``utils.data.render_scene``) minus the background colour, so an
    empty patch is all zeros and only the shapes carry signal."""
    if len(scenes) == 0:
        raise ValueError("scenes must hold at least one scene")
    background = torch.tensor(BACKGROUND_RGB)[:, None, None]  # (3, 1, 1)
    return torch.stack([render_scene(objects) for objects in scenes]) - background


def picture_tokenizer() -> WordTokenizer:
    """One token per word of the questions and captions (``utils.data.picture_vocabulary``)."""
    return WordTokenizer(picture_vocabulary())


def encode_words(texts: Sequence[str], tokenizer: WordTokenizer, length: int) -> torch.Tensor:
    """``LongTensor (N, length)``: each text's word ids, padded on the LEFT with ``<pad>`` so that the last
    word of every text sits at the last position (where ``PictureQuestionModel`` reads its answer).

    >>> encode_words(["which shape is red"], picture_tokenizer(), 6).tolist()[0][:2]   # two pads first
    [0, 0]
    """
    rows = []
    for text in texts:
        ids = tokenizer.encode(text)
        if len(ids) > length:
            raise ValueError(f"{text!r} has {len(ids)} words, more than length={length}")
        rows.append([tokenizer.pad_id] * (length - len(ids)) + ids)
    return torch.tensor(rows, dtype=torch.long)


@dataclass
class PictureQuestionBatch:
    """Questions ready for the model: ``images (N, 3, H, W)`` (centred), ``words (N, T)`` (left-padded),
    ``answers (N,)`` (indices into ``picture_answers()``), and each question's ``kind``."""

    images: torch.Tensor
    words: torch.Tensor
    answers: torch.Tensor
    kinds: list[str]

    def __len__(self) -> int:
        return len(self.answers)


QUESTION_LENGTH = 5  # the longest question has 5 words ("what colour is the triangle")


def encode_picture_questions(questions: Sequence[PictureQuestion], tokenizer: WordTokenizer | None = None,
                             length: int = QUESTION_LENGTH) -> PictureQuestionBatch:
    """Render, tokenise and label ``questions`` (from ``utils.data.picture_questions``)."""
    if len(questions) == 0:
        raise ValueError("questions must hold at least one PictureQuestion")
    tokenizer = tokenizer or picture_tokenizer()
    answers = picture_answers()
    return PictureQuestionBatch(centred_images([q.objects for q in questions]),
                                encode_words([q.question for q in questions], tokenizer, length),
                                torch.tensor([answers.index(q.answer) for q in questions]),
                                [q.kind for q in questions])


@torch.no_grad()
def answer_questions(model: PictureQuestionModel, batch: PictureQuestionBatch) -> list[str]:
    """The model's answer (a word of ``picture_answers()``) to every question of ``batch``."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        best = model(batch.images.to(device), batch.words.to(device)).argmax(dim=-1).cpu()
    finally:
        model.train(was_training)
    answers = picture_answers()
    return [answers[i] for i in best.tolist()]


def accuracy_by_kind(predicted: Sequence[str], batch: PictureQuestionBatch) -> dict[str, float]:
    """The share of right answers for each kind of question in ``batch`` (and ``"all"``)."""
    truth = [picture_answers()[i] for i in batch.answers.tolist()]
    if len(predicted) != len(truth):
        raise ValueError(f"predicted must hold one answer per question ({len(truth)}), got {len(predicted)}")
    right = [p == t for p, t in zip(predicted, truth, strict=True)]
    result = {kind: sum(r for r, k in zip(right, batch.kinds, strict=True) if k == kind)
              / batch.kinds.count(kind) for kind in dict.fromkeys(batch.kinds)}
    result["all"] = sum(right) / len(right)
    return result


# --- The shipped picture-question model (Q33) -----------------------------------------------------------
# Learning to bind a word to the patch that shows it takes a 2-layer transformer about 1,500 steps here,
# more than a notebook can spend, so the course ships the model as a checkpoint made by this module's script
# (`python -m utils.multimodal`, or `make course-vqa`), and `picture_question_model()` loads it.

VQA_CONFIG = {"d_model": 32, "n_heads": 4, "n_layers": 2}
VQA_STEPS, VQA_BATCH, VQA_LR, VQA_QUESTIONS = 2000, 64, 3e-3, 8000
VQA_CHECKPOINT = Path(__file__).parent / "checkpoints" / "picture_questions.pt"


@dataclass
class PictureQA:
    """The Q33 model with its tokenizer and training losses."""

    model: PictureQuestionModel
    tokenizer: WordTokenizer
    history: History


def vqa_config(tokenizer: WordTokenizer) -> MultimodalConfig:
    """The configuration of the shipped model: 24 x 24 pictures in 8 x 8 patches (9 tokens), questions of up
    to ``QUESTION_LENGTH`` words, and ``VQA_CONFIG``'s transformer."""
    return MultimodalConfig(vocab_size=tokenizer.vocab_size, n_answers=len(picture_answers()),
                            max_words=QUESTION_LENGTH, **VQA_CONFIG)


def train_picture_question_model(steps: int = VQA_STEPS, seed: int = 0, progress: bool = True,
                                 device: torch.device | str = "cpu") -> PictureQA:
    """Train the Q33 model from scratch: ``VQA_QUESTIONS`` questions of ``picture_questions(..., seed=seed)``
    (two objects per picture, all three kinds), a ``PictureQuestionModel`` of ``vqa_config`` initialised
    from ``seed``, ``steps`` AdamW steps of ``VQA_BATCH`` questions at learning rate ``VQA_LR``.

    With the default steps it answers more than 95 % of new questions of every kind right (chance: a
    quarter for colours and shapes, a third for columns); the tests check that.
    """
    check_positive_int("steps", steps)
    tokenizer = picture_tokenizer()
    data = encode_picture_questions(picture_questions(VQA_QUESTIONS, seed=seed), tokenizer)
    torch.manual_seed(seed)
    model = PictureQuestionModel(vqa_config(tokenizer)).to(device)
    generator = torch.Generator().manual_seed(seed)

    def batch_fn() -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        rows = torch.randint(len(data), (VQA_BATCH,), generator=generator)
        return (data.images[rows].to(device), data.words[rows].to(device)), data.answers[rows].to(device)

    history = train(model, batch_fn, steps, VQA_LR, loss_fn=nn.functional.cross_entropy, progress=progress,
                    desc="training the picture-question model")
    return PictureQA(model, tokenizer, history)


def save_picture_question_model(trained: PictureQA, path: str | Path = VQA_CHECKPOINT) -> Path:
    """Write the model as plain tensors and numbers (``torch.load(path, weights_only=True)`` reads it)."""
    config = trained.model.config
    return write_checkpoint({
        "config": asdict(config),
        "vocabulary": trained.tokenizer.id_to_token,
        "answers": picture_answers(),
        "state_dict": cpu_state_dict(trained.model),
        "losses": trained.history.losses,
    }, path)


def picture_question_model(device: torch.device | str = "cpu",
                           path: str | Path = VQA_CHECKPOINT) -> PictureQA:
    """The Q33 model, loaded from the checkpoint the course ships (see ``train_picture_question_model``)."""
    payload = read_checkpoint(path, what="picture-question model", module="utils.multimodal",
                              target="course-vqa")
    tokenizer = picture_tokenizer()
    if payload["vocabulary"] != tokenizer.id_to_token or payload["answers"] != picture_answers():
        raise ValueError(f"{path} was made with another vocabulary: re-run `python -m utils.multimodal`")
    model = PictureQuestionModel(MultimodalConfig(**payload["config"]))
    model.load_state_dict(payload["state_dict"])
    return PictureQA(model.to(device).eval(), tokenizer, loss_history(payload["losses"]))


def patch_attention(attention: torch.Tensor, n_patches: int) -> torch.Tensor:
    """Where the last token looked in the picture: ``attention (B, H, T, T)`` of one layer -> the last
    row's weights on the first ``n_patches`` keys, averaged over heads, ``(B, n_patches)``.

    >>> weights = torch.full((1, 2, 3, 3), 1 / 3)
    >>> patch_attention(weights, 2).tolist()
    [[0.3333333432674408, 0.3333333432674408]]
    """
    if attention.dim() != 4 or attention.shape[-1] < n_patches:
        raise ValueError(f"attention must be (B, H, T, T) with T >= n_patches={n_patches}, got "
                         f"{tuple(attention.shape)}")
    return attention[:, :, -1, :n_patches].mean(dim=1)  # (B, H, T, T) -> (B, N)


# --- Lecture 7, Q34: a CLIP-style pair of encoders and a model that draws shapes on request --------------

class BagOfWordsText(nn.Module):
    """A text encoder: the mean of the words' learned vectors (padding left out), then a linear map to
    ``out_dim``. ``forward(words (B, T))`` -> ``(B, out_dim)``."""

    def __init__(self, vocab_size: int, dim: int, out_dim: int, pad_id: int = 0) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.proj = nn.Linear(dim, out_dim)
        self.pad_id = pad_id

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        keep = (words != self.pad_id).float()[..., None]  # (B, T, 1)
        mean = (self.embed(words) * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1)  # (B, dim)
        return self.proj(mean)


class ContrastiveImageText(nn.Module):
    """CLIP in miniature (Radford et al. 2021): an image encoder (an MLP over the pixels) and a text encoder
    (``BagOfWordsText``) that map a picture and a caption into one ``embed_dim``-dimensional space, trained
    with ``utils.losses.contrastive_loss`` so that a picture lands next to its own caption.
    ``forward((images, words))`` -> ``(image_features, text_features)``, both ``(B, embed_dim)``; the
    temperature is learned, as CLIP's is (``log_temperature``, starting at ``log 0.1``)."""

    def __init__(self, vocab_size: int, image_size: int = 24, channels: int = 3, hidden: int = 64,
                 embed_dim: int = 32, pad_id: int = 0) -> None:
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("image_size", image_size), ("channels", channels),
                            ("hidden", hidden), ("embed_dim", embed_dim)):
            check_positive_int(name, value)
        self.image_encoder = nn.Sequential(nn.Flatten(), nn.Linear(channels * image_size**2, hidden),
                                           nn.GELU(), nn.Linear(hidden, embed_dim))
        self.text_encoder = BagOfWordsText(vocab_size, hidden, embed_dim, pad_id)
        self.log_temperature = nn.Parameter(torch.tensor(-2.3026))  # CLIP starts at 0.07; we at 0.1

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.image_encoder(images), dim=-1)  # (B, embed_dim), unit length

    def encode_texts(self, words: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.text_encoder(words), dim=-1)

    def forward(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        images, words = batch
        return self.image_encoder(images), self.text_encoder(words)


def zero_shot_classify(model: ContrastiveImageText, images: torch.Tensor, class_words: torch.Tensor
                       ) -> torch.Tensor:
    """CLIP's zero-shot classifier: each image gets the class whose prompt (a row of ``class_words``, e.g.
    the words of ``"a circle"``) is most similar to it by cosine. Returns ``(scores (B, K), best (B,))``."""
    with torch.no_grad():
        scores = model.encode_images(images) @ model.encode_texts(class_words).T  # (B, K) cosines
    return scores, scores.argmax(dim=-1)


def single_object_scenes(generator: torch.Generator, n: int, jitter: bool = True, row: int | None = None
                         ) -> list[tuple[ShapeObject]]:
    """``n`` one-object scenes whose (shape, colour, column) requests are all different when ``n`` is at
    most 48 (so a contrastive batch never holds two identical captions), cells and offsets at random."""
    combos = [(s, c, col) for s in SHAPE_NAMES for c in COLOUR_NAMES for col in range(len(COLUMN_NAMES))]
    order = torch.randperm(len(combos), generator=generator).tolist()
    scenes = []
    for i in range(n):
        shape, colour, column = combos[order[i % len(combos)]]
        r = int(torch.randint(len(COLUMN_NAMES), (1,), generator=generator)) if row is None else row
        offset = tuple(int(v) for v in torch.randint(2, (2,), generator=generator)) if jitter else (0, 0)
        scenes.append((ShapeObject(shape, colour, r, column, offset),))
    return scenes


class ShapeDrawer(nn.Module):
    """A text-to-image model in miniature: a request (``"a red circle on the left"``, as word ids) is read as
    a bag of words and an MLP writes every pixel of the picture, ``forward(words (B, T))`` -> images
    ``(B, 3, H, W)`` in ``[0, 1]`` (a sigmoid). It draws one picture per request; DALL-E samples many."""

    def __init__(self, vocab_size: int, image_size: int = 24, channels: int = 3, hidden: int = 128,
                 pad_id: int = 0) -> None:
        super().__init__()
        self.image_size, self.channels = image_size, channels
        self.text = BagOfWordsText(vocab_size, hidden, hidden, pad_id)
        self.decoder = nn.Sequential(nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                     nn.Linear(hidden, channels * image_size**2))

    def forward(self, words: torch.Tensor) -> torch.Tensor:
        pixels = torch.sigmoid(self.decoder(self.text(words)))  # (B, C·H·W)
        return pixels.view(-1, self.channels, self.image_size, self.image_size)  # (B, C, H, W)


if __name__ == "__main__":  # python -m utils.multimodal: (re)make the shipped Q33 checkpoint, on the CPU
    import time

    torch.set_num_threads(1)  # one thread, as the tests run the recipe: the same rounding, the same model
    begin = time.perf_counter()
    made = train_picture_question_model()
    where = save_picture_question_model(made)
    print(f"trained in {time.perf_counter() - begin:.0f} s; final loss {made.history.final_loss:.4f}; "
          f"wrote {where} ({where.stat().st_size / 1e6:.2f} MB)")
