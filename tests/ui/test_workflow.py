"""The whole workflow in a real browser on the toy model: create an embedding, train it with previews every 10
steps, watch the previews and the curves arrive, stop, then draw with it and read the image's parameters."""

from __future__ import annotations

import re

from ui_helpers import choose, fill, open_group, open_tab, value, wait_text

from oneword.embeddings.formats import load_embedding_file
from oneword.generate.pnginfo import read_parameters

NAME = "zqstar"


def test_create_train_stop_generate(page, server, workspace, tmp_path):
    root = workspace.root
    open_tab(page, "Create")
    fill(page, "embedding-name", NAME)
    fill(page, "embedding-init-text", "shape")
    fill(page, "embedding-vectors", 2)
    page.click("#embedding-create")
    assert wait_text(page, "embedding-message", "wrote") == (
        f"wrote embeddings/{NAME}.pt (2 vectors, init text 'shape')")
    assert load_embedding_file(root / "embeddings" / f"{NAME}.pt").n_vectors == 2

    open_tab(page, "Train")
    fill(page, "train-name", NAME)
    fill(page, "train-data", "datasets/star")
    open_group(page, "Steps and files")
    for elem_id, number in (("train-save-every", 10), ("train-preview-every", 10), ("train-csv-every", 10)):
        fill(page, elem_id, number)
    open_group(page, "Previews")
    fill(page, "train-preview-steps", 4)
    open_group(page, "Validation, scores and stopping")
    fill(page, "train-validate-every", 10)
    fill(page, "train-validation-size", 8)
    page.click("#train-start-button")
    assert wait_text(page, "train-message", "started") == f"started {NAME}"
    wait_text(page, "train-status", "running")
    # three previews (steps 10, 20, 30) arrive in the gallery while the run goes on; the curves are drawn
    page.locator("#train-previews img").nth(2).wait_for()
    captions = page.locator("#train-previews .caption-label, #train-previews figcaption")
    steps = [c.removesuffix(" ★ best") for c in captions.all_inner_texts()]
    assert steps[:3] == ["step 10", "step 20", "step 30"]
    page.locator("#train-loss-plot canvas, #train-loss-plot svg").first.wait_for()
    assert len(server.jobs.state().train_loss) >= 3
    page.click("#train-stop-button")
    status = wait_text(page, "train-status", "finished")
    state = server.jobs.state()
    assert state.status == "finished" and state.step >= 30
    assert f"stopped at step {state.step}: saved" in status and "continue with Resume ticked" in status
    # NAME.pt is the run's best checkpoint so far; the stopped step's state is saved in the log folder
    best = int(re.search(rf"{NAME}\.pt is the best so far, step (\d+)", status).group(1))
    assert best <= state.step and load_embedding_file(root / "embeddings" / f"{NAME}.pt").step == best
    (last,) = root.glob(f"textual_inversion/*/{NAME}/embeddings/{NAME}-{state.step}.pt")
    assert load_embedding_file(last).step == state.step and last.with_name(last.name + ".optim").is_file()
    page.locator("#train-summary table").wait_for()
    header = page.locator("#train-summary thead").inner_text().split()
    assert header[:2] == ["step", "val_loss"] and header[-1] == "best"
    assert page.locator("#train-previews img").count() >= 3
    shots = tmp_path / "screenshots"  # docs/ui's come from test_beginner.py, at 1280x800
    shots.mkdir()
    page.screenshot(path=str(shots / "train.png"), full_page=True)

    open_tab(page, "Generate")
    fill(page, "generate-prompt", f"a photo of {NAME}")
    fill(page, "generate-seed", 1)
    fill(page, "generate-steps", 4)
    page.click("#generate-run")
    written = wait_text(page, "generate-message", "wrote")
    path = root / written.removeprefix("wrote ")
    assert path.parent == root / "outputs" / "txt2img" and path.name == "00000-1.png"
    shown = value(page, "generate-parameters")
    assert shown == f"{path.name}\n{read_parameters(path)}"
    assert read_parameters(path).startswith(f"a photo of {NAME}\nSteps: 4, Sampler: Euler a, CFG scale: 7, Seed: 1, "
                                            "Size: 64x64, Model hash: ")
    assert wait_text(page, "generate-available", NAME) == f"embeddings: {NAME} — hypernetworks: none — LoRAs: none"
    page.locator("#generate-images img").first.wait_for()
    page.screenshot(path=str(shots / "generate.png"), full_page=True)

    open_tab(page, "Runs")
    page.click("#runs-refresh")
    run = f"textual_inversion/{state.log_folder.parent.name}/{NAME}"
    choose(page, "runs-run", run)
    wait_text(page, "runs-about", NAME)
    page.locator("#runs-summary table").wait_for()
    page.screenshot(path=str(shots / "runs.png"), full_page=True)

    open_tab(page, "Prepare")
    fill(page, "prepare-dst", "datasets/star")
    page.click("#prepare-check")
    # the form starts at the toy model's 64 px: the toy pictures are usable as they are
    assert wait_text(page, "prepare-message", "usable") == "12 usable pictures, 0 errors, 1 warnings"
    choose(page, "prepare-model", "tiny-sd1")  # SD 1's 512 px
    page.wait_for_function("document.querySelector('#prepare-width input').value === '512'")
    page.click("#prepare-check")
    # 64 px pictures checked against preprocess's 512 px: preprocess would skip each (enlarged 8x, at most 4x), so
    # check counts none as usable, by the same rule, and one warning says that a model's own size fits them
    assert wait_text(page, "prepare-message", "usable pictures, 12") == "0 usable pictures, 12 errors, 1 warnings"
    page.locator("#prepare-report table").wait_for()
    page.locator("#prepare-flagged img").first.wait_for()
    page.screenshot(path=str(shots / "prepare.png"), full_page=True)
    open_tab(page, "Create")
    page.screenshot(path=str(shots / "create.png"), full_page=True)
    assert sorted(p.name for p in shots.glob("*.png")) == [
        "create.png", "generate.png", "prepare.png", "runs.png", "train.png"]
