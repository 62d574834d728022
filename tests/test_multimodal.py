"""utils.multimodal: image patches equal F.unfold's (PyTorch's own im2col), in ViT's token count."""

import pytest
import torch
import torch.nn.functional as F

from utils.multimodal import image_to_patches, num_patches


@pytest.mark.parametrize("shape, p", [((2, 3, 8, 8), 4), ((1, 1, 6, 9), 3), ((3, 2, 4, 6), 2),
                                      ((1, 3, 5, 5), 1)])
def test_patches_equal_unfold(shape, p):
    images = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    expected = F.unfold(images, kernel_size=p, stride=p).transpose(1, 2)  # (B, C·p·p, N) -> (B, N, C·p·p)
    torch.testing.assert_close(image_to_patches(images, p), expected, rtol=0, atol=0)


def test_a_224_image_at_16_pixels_is_196_tokens_of_768_numbers():
    patches = image_to_patches(torch.zeros(1, 3, 224, 224), 16)
    assert patches.shape == (1, 196, 768) and num_patches(224, 224, 16) == 196


def test_first_patch_is_the_top_left_corner_and_input_is_unchanged():
    images = torch.arange(1 * 2 * 4 * 4, dtype=torch.float32).view(1, 2, 4, 4)
    before = images.clone()
    patches = image_to_patches(images, 2)
    assert patches[0, 0].tolist() == [0, 1, 4, 5, 16, 17, 20, 21]  # channel 0's 2x2 corner, then channel 1's
    assert patches[0, 1].tolist()[:4] == [2, 3, 6, 7]  # then the patch to its right
    assert torch.equal(images, before)


def test_bad_inputs_are_rejected_with_the_argument_named():
    with pytest.raises(ValueError, match="patch_size=3 must divide"):
        image_to_patches(torch.zeros(1, 1, 4, 6), 3)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        image_to_patches(torch.zeros(4, 4), 2)
    with pytest.raises(TypeError, match="images must be a torch.Tensor"):
        image_to_patches([[0.0]], 1)
    with pytest.raises(ValueError, match="patch_size"):
        image_to_patches(torch.zeros(1, 1, 4, 4), 0)
    with pytest.raises(ValueError, match="must divide"):
        num_patches(10, 10, 3)


def test_toy_image_is_deterministic_in_range_and_its_patches_differ():
    from utils.multimodal import toy_image

    image = toy_image()
    assert image.shape == (3, 224, 224) and torch.equal(image, toy_image())
    assert image.min() >= 0 and image.max() <= 1
    patches = image_to_patches(image[None], 16)[0]  # (196, 768)
    assert patches.shape == (196, 768) and num_patches(224, 224, 16) == 196
    assert len({tuple(p.round(decimals=3).tolist()) for p in patches}) > 50  # not one flat colour
