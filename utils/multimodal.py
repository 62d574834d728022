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

from dataclasses import dataclass

import torch
import torch.nn as nn

from ._validation import check_positive_int

__all__ = ["image_to_patches", "num_patches", "toy_image", "MultimodalConfig", "PatchEmbedding",
           "PictureQuestionModel"]


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
    weights ``(B, H, N + T, N + T)``: the last row, first N columns, is where the answer looked in the picture.

    >>> config = MultimodalConfig(vocab_size=10, n_answers=3, image_size=8, patch_size=4, max_words=5)
    >>> model = PictureQuestionModel(config)
    >>> logits, attention = model(torch.rand(2, 3, 8, 8), torch.ones(2, 5, dtype=torch.long), return_attention=True)
    >>> tuple(logits.shape), tuple(attention[-1].shape)       # 4 patches + 5 words = 9 tokens
    ((2, 3), (2, 4, 9, 9))
    """

    def __init__(self, config: MultimodalConfig) -> None:
        super().__init__()
        from .models import Block, GPTConfig, _init_like_gpt2  # noqa: PLC0415 (models imports data, which is heavy)

        if not isinstance(config, MultimodalConfig):
            raise TypeError(f"config must be a MultimodalConfig, got {type(config).__name__}")
        self.config = config
        block_config = GPTConfig(vocab_size=config.vocab_size, block_size=config.n_patches + config.max_words,
                                 d_model=config.d_model, n_heads=config.n_heads, n_layers=config.n_layers)
        self.patch_embed = PatchEmbedding(config.image_size, config.patch_size, config.channels, config.d_model)
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.word_pos_emb = nn.Embedding(config.max_words, config.d_model)
        self.blocks = nn.ModuleList(Block(block_config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.n_answers)
        _init_like_gpt2(self, [layer for b in self.blocks for layer in (b.attn.out_proj, b.mlp[2])])

    def forward(self, images: torch.Tensor | tuple[torch.Tensor, torch.Tensor], words: torch.Tensor | None = None,
                return_attention: bool = False) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """``images (B, C, H, W)`` and ``words (B, T)`` -> answer logits ``(B, n_answers)``. The pair may also
        come as one argument ``(images, words)``, as ``utils.training.train`` passes a batch's inputs."""
        from .models import _check_token_ids, _run_blocks  # noqa: PLC0415

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
