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


# --- Lecture 7: the picture-question data, the multimodal models and the shipped checkpoint ---------------

import math  # noqa: E402

import torch.nn as nn  # noqa: E402

from utils.data import (  # noqa: E402
    BACKGROUND_RGB,
    COLOUR_RGB,
    QUESTION_KINDS,
    ShapeObject,
    ask,
    picture_answers,
    picture_questions,
    random_scenes,
    render_scene,
    shape_mask,
)
from utils.multimodal import (  # noqa: E402
    VQA_CHECKPOINT,
    ContrastiveImageText,
    MultimodalConfig,
    PatchEmbedding,
    PictureQuestionModel,
    ShapeDrawer,
    accuracy_by_kind,
    answer_questions,
    centred_images,
    encode_picture_questions,
    encode_words,
    patch_attention,
    picture_question_model,
    picture_tokenizer,
    save_picture_question_model,
    single_object_scenes,
    train_picture_question_model,
    zero_shot_classify,
)

TEST_QUESTIONS = picture_questions(400, seed=2024)


def test_render_scene_paints_each_object_in_its_own_cell_and_patch():
    scene = (ShapeObject("square", "blue", 2, 1, (1, 0)), ShapeObject("cross", "red", 0, 2))
    image = render_scene(scene)
    assert image.shape == (3, 24, 24)
    square_region = image[:, 17:24, 8:15]  # row 2 starts at 16, moved down 1; column 1 starts at 8
    assert torch.allclose(square_region, torch.tensor(COLOUR_RGB["blue"])[:, None, None].expand(3, 7, 7))
    painted = (image != torch.tensor(BACKGROUND_RGB)[:, None, None]).any(dim=0)  # (24, 24)
    assert painted.sum() == shape_mask("square").sum() + shape_mask("cross").sum()
    patches = image_to_patches(centred_images([scene]), 8)[0]  # (9, 192)
    assert (patches.abs().sum(dim=1) > 0).nonzero().flatten().tolist() == [2, 7]  # cells 0*3+2 and 2*3+1


def test_questions_have_one_right_answer_from_the_scene():
    for q in TEST_QUESTIONS[:100]:
        obj = q.objects[q.target]
        column = ["left", "middle", "right"][obj.column]
        expected = {"colour": obj.colour, "shape": obj.shape, "position": column}
        assert q.answer == expected[q.kind]
        assert len({o.shape for o in q.objects}) == len({o.colour for o in q.objects}) == len(q.objects) == 2
        assert len({o.cell for o in q.objects}) == 2
        assert q.question.split()[-1] in (obj.shape, obj.colour)  # the last word names the object
    assert {q.kind for q in TEST_QUESTIONS} == set(QUESTION_KINDS)
    assert picture_questions(5, seed=1) == picture_questions(5, seed=1)


def test_bad_picture_inputs_are_rejected():
    with pytest.raises(ValueError, match="shape must be one of"):
        ShapeObject("star", "red", 0, 0)
    with pytest.raises(ValueError, match="row must be"):
        ShapeObject("square", "red", 3, 0)
    with pytest.raises(ValueError, match="kind must be one of"):
        ask((ShapeObject("square", "red", 0, 0),), 0, "size")
    with pytest.raises(ValueError, match="patch_size=5 must divide"):
        PatchEmbedding(image_size=24, patch_size=5, channels=3, d_model=8)
    with pytest.raises(ValueError, match="must divide"):
        MultimodalConfig(vocab_size=5, n_answers=2, image_size=24, patch_size=7)
    with pytest.raises(ValueError, match="images must have shape"):
        PatchEmbedding(24, 8, 3, 8)(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="more than length"):
        encode_words(["what colour is the big circle"], picture_tokenizer(), 5)


def test_patch_embedding_is_a_linear_map_of_unfold_plus_row_and_column():
    torch.manual_seed(0)
    embed = PatchEmbedding(image_size=12, patch_size=4, channels=3, d_model=6)
    images = torch.randn(2, 3, 12, 12)
    unfolded = F.unfold(images, kernel_size=4, stride=4).transpose(1, 2)  # (2, 9, 48)
    rows, cols = torch.arange(9) // 3, torch.arange(9) % 3
    expected = embed.proj(unfolded) + embed.row_emb(rows) + embed.col_emb(cols)
    torch.testing.assert_close(embed(images), expected)


def test_picture_question_model_reads_one_sequence_and_does_not_modify_inputs():
    torch.manual_seed(0)
    config = MultimodalConfig(vocab_size=20, n_answers=4, image_size=8, patch_size=4, max_words=3, d_model=8,
                              n_heads=2, n_layers=1)
    model = PictureQuestionModel(config).eval()
    images, words = torch.randn(2, 3, 8, 8), torch.tensor([[1, 2, 3], [4, 5, 6]])
    before = (images.clone(), words.clone())
    logits, attention = model(images, words, return_attention=True)
    assert logits.shape == (2, 4) and attention[0].shape == (2, 2, 7, 7)
    torch.testing.assert_close(model((images, words)), logits)  # the pair form, as train() passes it
    torch.testing.assert_close(model(images, words), logits)  # the fused path agrees with the readable one
    assert torch.equal(images, before[0]) and torch.equal(words, before[1])
    changed = images.clone()
    changed[0, :, :4, :4] += 1.0  # change one patch of the first picture only
    new = model(changed, words)
    assert not torch.allclose(new[0], logits[0]) and torch.allclose(new[1], logits[1])
    with pytest.raises(ValueError, match="same number of examples"):
        model(images[:1], words)


def test_patch_attention_is_the_last_rows_head_mean():
    weights = torch.softmax(torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(0)), dim=-1)
    expected = torch.stack([weights[b, :, 4, :2].mean(dim=0) for b in range(2)])
    torch.testing.assert_close(patch_attention(weights, 2), expected)
    with pytest.raises(ValueError, match="attention must be"):
        patch_attention(weights[0], 2)


def test_accuracy_by_kind_counts_by_hand():
    batch = encode_picture_questions(TEST_QUESTIONS[:6])
    truth = [q.answer for q in TEST_QUESTIONS[:6]]
    wrong_first = ["yellow" if truth[0] != "yellow" else "red"] + truth[1:]
    result = accuracy_by_kind(wrong_first, batch)
    kind = TEST_QUESTIONS[0].kind
    assert result["all"] == 5 / 6
    assert math.isclose(result[kind], 1 - 1 / batch.kinds.count(kind))


def test_clip_and_drawer_shapes_and_zero_shot_picks_the_most_similar_prompt():
    tok = picture_tokenizer()
    torch.manual_seed(0)
    clip = ContrastiveImageText(tok.vocab_size)
    scenes = single_object_scenes(torch.Generator().manual_seed(0), 48)
    assert len({(s[0].shape, s[0].colour, s[0].column) for s in scenes}) == 48  # captions all differ
    images = centred_images(scenes[:5])
    words = encode_words(["a red circle on the left", "a square"], tok, 6)
    img_f, txt_f = clip((images, words[:1].expand(5, -1)))
    assert img_f.shape == txt_f.shape == (5, 32)
    scores, best = zero_shot_classify(clip, images, words)
    image_vectors = F.normalize(clip.image_encoder(images), dim=-1)
    expected = image_vectors @ F.normalize(clip.text_encoder(words), dim=-1).T
    torch.testing.assert_close(scores, expected.detach())
    assert torch.equal(best, expected.argmax(dim=1))
    drawn = ShapeDrawer(tok.vocab_size)(words)
    assert drawn.shape == (2, 3, 24, 24) and drawn.min() >= 0 and drawn.max() <= 1


@pytest.fixture(scope="module")
def shipped():
    return picture_question_model()


def test_vqa_checkpoint_is_small_and_loads_with_weights_only():
    assert VQA_CHECKPOINT.exists(), "run `python -m utils.multimodal` (make course-vqa) to make it"
    assert VQA_CHECKPOINT.stat().st_size < 1_000_000
    payload = torch.load(VQA_CHECKPOINT, map_location="cpu", weights_only=True)
    assert set(payload) >= {"config", "vocabulary", "answers", "state_dict", "losses"}
    assert payload["answers"] == picture_answers()


def test_shipped_vqa_model_has_the_stated_quality(shipped):
    batch = encode_picture_questions(TEST_QUESTIONS, shipped.tokenizer)
    accuracy = accuracy_by_kind(answer_questions(shipped.model, batch), batch)
    assert all(accuracy[kind] > 0.95 for kind in QUESTION_KINDS), accuracy


def test_vqa_save_and_load_round_trip(shipped, tmp_path):
    again = picture_question_model(path=save_picture_question_model(shipped, tmp_path / "vqa.pt"))
    batch = encode_picture_questions(TEST_QUESTIONS[:8], shipped.tokenizer)
    with torch.no_grad():
        expected = shipped.model(batch.images, batch.words)
        torch.testing.assert_close(again.model(batch.images, batch.words), expected, rtol=0, atol=0)
    with pytest.raises(FileNotFoundError, match="python -m utils.multimodal"):
        picture_question_model(path=tmp_path / "missing.pt")


@pytest.mark.recipe
def test_the_script_still_trains_a_vqa_model_of_the_stated_quality(one_thread):
    trained = train_picture_question_model(progress=False)
    batch = encode_picture_questions(TEST_QUESTIONS, trained.tokenizer)
    accuracy = accuracy_by_kind(answer_questions(trained.model, batch), batch)
    assert all(accuracy[kind] > 0.95 for kind in QUESTION_KINDS), accuracy
    assert isinstance(trained.model.head, nn.Linear)


def test_random_scenes_are_seeded():
    assert random_scenes(3, seed=5) == random_scenes(3, seed=5) != random_scenes(3, seed=6)
