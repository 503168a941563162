"""The toy judge as a checkpoint scorer (`--score judge:CONCEPT`), through the trainer: an embedding's checkpoints
by its word, a hypernetwork's by the style of prompts without one. The figures are those of the scorer before it
took a ScoreContext (same seeds, same samples)."""

from __future__ import annotations

from oneword.toy.bundle import load_toy
from oneword.toy.concepts import CONCEPTS, write_concept_examples
from oneword.train.config import TrainConfig
from oneword.train.loop import train


def _scores(tmp_path, concept: str, **changes) -> dict[str, float]:
    model, _ = load_toy("toy")
    data = write_concept_examples(CONCEPTS[concept], tmp_path / "data")[0].parent
    word = {} if changes.get("kind") == "lora" else {"init_text": "object"}  # a LoRA adds no word
    config = TrainConfig(name="zqx", data=data, model="toy", max_steps=2, save_every=2, preview_every=0,
                         log_dir=tmp_path / "log", embeddings_dir=tmp_path / "emb", score=f"judge:{concept}",
                         score_samples=6, seed=0, **word, **changes)
    (record,) = train(config, model, device="cpu").records
    return record.scores


def test_the_judge_scores_an_embedding_by_its_word(tmp_path):
    assert _scores(tmp_path, "star") == {"judge_accuracy": 0.0, "judge_editability": 1.0}  # two steps: not yet


def test_the_judge_scores_a_hypernetwork_by_the_style_of_prompts_without_a_word(tmp_path):
    scores = _scores(tmp_path, "outline", kind="hypernetwork", learn_rate="0.001", template="hypernetwork",
                     hypernetwork_dir=tmp_path / "hn")
    assert scores == {"judge_accuracy": 0.0, "judge_shape": 1.0, "judge_colour": 1.0}


def test_the_judge_scores_a_lora_by_its_trigger_word_and_the_colours_it_keeps(tmp_path):
    # a LoRA adds no token vectors: its word is plain text to the prompt, its change is in the model's layers
    scores = _scores(tmp_path, "star", kind="lora", lora_dir=tmp_path / "lora")
    assert set(scores) == {"judge_accuracy", "judge_editability"}
    assert all(0.0 <= value <= 1.0 for value in scores.values())
