"""A training belongs to the server, not to a page: a refresh or a second tab shows the running job, a second
Start is refused, and Stop from any page stops it."""

from __future__ import annotations

import re

from ui_helpers import fill, open_group, open_tab, text, wait_text


def _step(status: str) -> int:
    return int(re.search(r"step (\d+)/", status).group(1))


def test_a_path_outside_the_workspace_is_refused_in_the_page(page, server, workspace):
    open_tab(page, "Train")
    fill(page, "train-name", "zqre")
    fill(page, "train-data", "../../etc")
    page.click("#train-start-button")
    assert wait_text(page, "train-message", "error") == (
        f"error: --data: ../../etc is outside the workspace {workspace.root} (refused)")
    assert server.jobs.current is None


def test_a_refresh_and_a_second_tab_reattach_to_the_running_job(page, server):
    open_tab(page, "Train")
    fill(page, "train-name", "zqre")
    fill(page, "train-data", "datasets/star")
    open_group(page, "Steps and files")
    fill(page, "train-max-steps", 100000)  # the toy form's 400 steps can end before the second tab is through
    for elem_id in ("train-save-every", "train-preview-every"):
        fill(page, elem_id, 0)
    open_group(page, "Validation, scores and stopping")
    fill(page, "train-validate-every", 0)
    page.click("#train-start-button")
    # any step past 0 (a page asks once a second, so it may never see a given step)
    page.locator("#train-status", has_text=re.compile(r"running zqre: step [1-9]\d*/")).wait_for()

    page.reload()
    open_tab(page, "Train")
    status = wait_text(page, "train-status", "running zqre: step")
    first = _step(status)
    page.locator("#train-status", has_text=re.compile(rf"step (?!{first}/)\d+/")).wait_for()  # still going
    assert _step(text(page, "train-status")) > first

    other = page.context.new_page()
    other.goto(page.url)
    open_tab(other, "Train")
    wait_text(other, "train-status", "running zqre: step")
    fill(other, "train-name", "zqother")
    fill(other, "train-data", "datasets/star")
    other.click("#train-start-button")
    assert wait_text(other, "train-message", "error") == (
        "error: a training is already running (zqre): stop it first")
    other.close()  # closing a page leaves the job running
    assert server.jobs.state().status == "running"

    page.click("#train-stop-button")
    assert wait_text(page, "train-message", "stopping") == "stopping: the run saves after this step"
    status = wait_text(page, "train-status", "finished")
    state = server.jobs.state()
    assert state.status == "finished" and f"stopped at step {state.step}: saved" in status
