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

import torch

from ._validation import check_positive_int

__all__ = ["image_to_patches", "num_patches", "toy_image"]


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
