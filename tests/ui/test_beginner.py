"""A beginner's first session in a real browser, from an empty workspace and through the page only: upload pictures
and their captions, write a toy concept's example pictures, preprocess, create an embedding, train it with
`When to stop` at auto while the status says what each phase does, draw with the word, compare its checkpoints;
then the screenshots of each tab at 1280x800 (docs/ui with ONEWORD_UI_SCREENSHOTS=docs/ui)."""

from __future__ import annotations

import re

from conftest import opened, screenshot_folder
from ui_helpers import choose, covered_px, fill, open_group, open_tab, table_rows, value, wait_text

from oneword.embeddings.formats import load_embedding_file
from oneword.generate.pnginfo import read_parameters
from oneword.toy.concepts import get_concept, write_concept_examples
from oneword.train.best import summary_best_step

NAME = "zqstar"
VIEWPORT = (1280, 800)
"""The screenshots' window: a laptop's."""
TABS = {"Prepare": "prepare.png", "Create": "create.png", "Train": "train.png", "Generate": "generate.png",
        "Runs": "runs.png"}


def _captions(folder) -> list[str]:
    return sorted(p.read_text(encoding="utf-8").strip() for p in folder.glob("*.txt"))


def test_a_beginner_goes_from_an_empty_workspace_to_a_compared_embedding(browser, empty_server, empty_workspace,
                                                                         tmp_path):
    root = empty_workspace.root
    assert not any(p for p in root.iterdir() if p.name != ".cache")
    star = tmp_path / "my-star-pictures"  # outside the workspace, as a user's own folder
    write_concept_examples(get_concept("star"), star)
    uploaded = sorted(star.iterdir())
    assert len(uploaded) == 24  # 12 pictures and their captions

    with opened(browser, empty_server.url, *VIEWPORT) as page:
        # 1. pictures in: uploaded from the browser into SRC (pictures/), then a toy concept's examples elsewhere
        page.set_input_files("#prepare-upload input[type=file]", [str(p) for p in uploaded])
        assert wait_text(page, "prepare-taken", "written") == "24 files written to pictures, 0 skipped"
        assert sorted(p.name for p in (root / "pictures").iterdir()) == [p.name for p in uploaded]
        assert all((root / "pictures" / p.name).read_bytes() == p.read_bytes() for p in uploaded)
        fill(page, "prepare-src", "examples/cross")
        choose(page, "prepare-concept", "cross")
        page.click("#prepare-examples")
        assert wait_text(page, "prepare-taken", "example pictures") == (
            "wrote 12 example pictures of the toy concept cross (captioned) to examples/cross: use it as SRC")
        crosses = root / "examples" / "cross"
        assert len(list(crosses.glob("*-cross.png"))) == 12 and len(list(crosses.glob("*-cross.txt"))) == 12

        # 2. preprocess the uploads with the form's defaults for the toy model (64 px): only SRC and DST given
        fill(page, "prepare-src", "pictures/")
        fill(page, "prepare-dst", "datasets/star")
        page.click("#prepare-run")
        prepared = wait_text(page, "prepare-message", "processed")
        assert prepared == ("12 pictures processed, 0 skipped, 12 written to datasets/star. Check: 12 usable "
                            "pictures, 0 errors, 1 warnings")
        data = root / "datasets" / "star"
        assert len(list(data.glob("*.png"))) == 12 and _captions(data) == _captions(star)
        page.locator("#prepare-report table").wait_for()

        # 3. create the embedding, then train it with When to stop at auto and a scorer, toy-sized step counts
        open_tab(page, "Create")
        fill(page, "embedding-name", NAME)
        fill(page, "embedding-init-text", "shape")
        page.click("#embedding-create")
        assert wait_text(page, "embedding-message", "wrote") == (
            f"wrote embeddings/{NAME}.pt (1 vectors, init text 'shape')")
        assert load_embedding_file(root / "embeddings" / f"{NAME}.pt").step == 0

        open_tab(page, "Train")
        fill(page, "train-name", NAME)
        fill(page, "train-data", "datasets/star")
        open_group(page, "Steps and files")
        for elem_id, number in (("train-max-steps", 80), ("train-save-every", 20), ("train-preview-every", 20),
                                ("train-csv-every", 10)):
            fill(page, elem_id, number)
        open_group(page, "Validation, scores and stopping")
        fill(page, "train-validate-every", 10)
        fill(page, "train-validation-size", 8)
        choose(page, "train-stop", "auto")
        fill(page, "train-score", "features")
        page.click("#train-start-button")
        assert wait_text(page, "train-message", "started") == f"started {NAME}"
        # the first checkpoint's scoring counts what it has drawn; each later one its share of the 8 samples
        scoring = wait_text(page, "train-status", "samples)")
        assert re.match(rf"running {NAME}: scoring step (\d+) \([0-8]/8 samples\) · step \1/80", scoring), \
            scoring
        status = wait_text(page, "train-status", "finished")
        state = empty_server.jobs.state()
        assert state.status == "finished" and state.best_step is not None, status
        # stopped by the plateau of the features score, or at Max steps; NAME.pt is the best checkpoint either way
        ended = re.match(rf"finished {NAME}: (?:stopped at step (?P<stop>\d+): features stopped improving \(When to "
                         rf"stop: auto\); |trained 80 steps: )(?:the best checkpoint by features is step (?P<best>\d+): "
                         rf"saved it as |saved )embeddings/{NAME}\.pt · ", status)
        assert ended, status
        assert state.step == int(ended["stop"] or 80) and state.best_step == int(ended["best"] or state.step)
        assert f" · best checkpoint: step {state.best_step} by features" in status
        (run,) = root.glob(f"textual_inversion/*/{NAME}")
        assert summary_best_step(run / "checkpoints.csv") == state.best_step
        assert load_embedding_file(root / "embeddings" / f"{NAME}.pt").step == state.best_step
        page.locator("#train-summary table").wait_for()
        header = page.locator("#train-summary thead").inner_text().split()
        assert header == ["step", "val_loss", "features", "best"]
        rows = table_rows(page, "train-summary")
        assert [row[0] for row in rows] == [str(s) for s in range(10, state.step + 1, 10)]
        assert [row[0] for row in rows if row[-1] == "*"] == [str(state.best_step)], rows
        # a preview every 20 steps, the best checkpoint's marked when it has one
        previews = sorted(int(p.stem.rsplit("-", 1)[1]) for p in (run / "images").glob(f"{NAME}-*.png"))
        shown = page.locator("#train-previews .caption-label, #train-previews figcaption")
        shown.nth(len(previews) - 1).wait_for()
        assert shown.all_inner_texts() == [f"step {s}" + (" ★ best" if s == state.best_step else "") for s in previews]
        assert previews[:2] == [20, 40]

        # 4. draw with the word: the PNG's infotext names the embedding's hash
        open_tab(page, "Generate")
        fill(page, "generate-prompt", f"a photo of {NAME}")
        fill(page, "generate-seed", 1)
        page.click("#generate-run")
        written = wait_text(page, "generate-message", "wrote")
        assert written == "wrote outputs/txt2img/00000-1.png"
        png = root / "outputs" / "txt2img" / "00000-1.png"
        infotext = read_parameters(png)
        assert value(page, "generate-parameters") == f"{png.name}\n{infotext}"
        assert infotext.startswith(f"a photo of {NAME}\nSteps: 20, ")
        assert re.search(rf'TI hashes: "{NAME}: [0-9a-f]{{12}}"', infotext), infotext
        page.locator("#generate-images img").first.wait_for()

        # 5. compare the run's checkpoints with the same prompt and seed: the best is named and outlined
        page.get_by_role("tab", name="Compare checkpoints").click()
        page.click("#compare-refresh")
        choose(page, "compare-run", empty_workspace.relative(run))
        page.click("#compare-run-button")
        compared = wait_text(page, "compare-message", "wrote")
        assert compared == f"wrote outputs/compare/{NAME}-1.png — step {state.best_step} ★ best, outlined in red"
        grid = root / "outputs" / "compare" / f"{NAME}-1.png"
        assert grid.is_file()
        steps = sorted(int(p.stem.rsplit("-", 1)[1]) for p in run.glob(f"embeddings/{NAME}-*.pt"))
        assert "Compared: " + "; ".join(f"{NAME}-{s}.pt" for s in steps) in read_parameters(grid)
        page.locator("#compare-grid img").wait_for()
        assert covered_px(page, "compare-grid") <= 0  # the column labels show above the pictures

        # the Runs tab opens the run: its settings, checkpoints and curves
        open_tab(page, "Runs")
        choose(page, "runs-run", empty_workspace.relative(run))
        about = wait_text(page, "runs-about", NAME)
        assert "max_steps 80, save_every 20, stop auto, stop_signal_used features" in about, about
        page.locator("#runs-summary table").wait_for()
        page.locator("#runs-loss img").wait_for()
        assert covered_px(page, "runs-loss") <= 0  # the highest tick and the legend show

        # each tab as the beginner left it, at 1280x800
        shots = screenshot_folder(tmp_path)
        for tab, file in TABS.items():
            open_tab(page, tab)
            if tab == "Generate":
                page.get_by_role("tab", name="txt2img").click()
            page.screenshot(path=str(shots / file), full_page=True)
        assert page.viewport_size == {"width": VIEWPORT[0], "height": VIEWPORT[1]}
    assert sorted(p.name for p in shots.glob("*.png")) == sorted(TABS.values())
