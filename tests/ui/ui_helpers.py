"""Filling and reading Gradio widgets by the ids the UI gives them (`#train-max-steps` and so on)."""

from __future__ import annotations


def fill(page, elem_id: str, value: object) -> None:
    """Type `value` into the text or number field `#elem_id` and leave it (Gradio reads it on blur)."""
    field = page.locator(f"#{elem_id} textarea, #{elem_id} input").first
    field.fill(str(value))
    field.blur()


def text(page, elem_id: str) -> str:
    """The visible text of `#elem_id`."""
    return page.locator(f"#{elem_id}").inner_text()


def value(page, elem_id: str) -> str:
    """The value of the text field `#elem_id`."""
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first.input_value()


def open_tab(page, name: str) -> None:
    """Click the top-level tab called `name`."""
    page.get_by_role("tab", name=name, exact=True).first.click()


def open_group(page, title: str) -> None:
    """Open the Train tab's accordion called `title`."""
    page.get_by_text(title, exact=True).first.click()


def wait_text(page, elem_id: str, needle: str) -> str:
    """Wait until `#elem_id` shows `needle` with no progress timer over it ("processing | 0.2s", while an event that
    writes it runs); its text at that moment (read in the same look, so a line that changes each second still holds
    the needle)."""
    page.locator(f"#{elem_id}", has_text=needle).wait_for()
    return page.wait_for_function("""([id, needle]) => {
        const e = document.getElementById(id);
        const busy = [...e.querySelectorAll(':scope > [data-testid=status-tracker]')].some(s => s.innerText.trim());
        return !busy && e.innerText.toLowerCase().includes(needle.toLowerCase()) && e.innerText;
    }""", arg=[elem_id, needle]).json_value()


def choose(page, elem_id: str, option: str) -> None:
    """Pick `option` in the dropdown `#elem_id`."""
    page.locator(f"#{elem_id} input").first.click()
    page.get_by_role("option", name=option, exact=True).click()


def table_rows(page, elem_id: str) -> list[list[str]]:
    """The cells of the table `#elem_id`, row by row (Gradio draws the rows as ARIA grid rows, not <tr>s)."""
    rows = page.locator(f"#{elem_id} [role=grid] [role=row][data-index]")
    rows.first.wait_for()
    return [[cell.strip() for cell in row.locator("[role=gridcell]").all_inner_texts()] for row in rows.all()]


def covered_px(page, elem_id: str) -> float:
    """How far the label and buttons of the picture `#elem_id` reach down over its image (0 or less: not at all)."""
    return page.eval_on_selector(f"#{elem_id}", """e => {
        const top = e.querySelector('img').getBoundingClientRect().top;
        const over = [...e.querySelectorAll('[data-testid=block-label], .icon-button-wrapper')];
        return Math.max(...over.map(o => o.getBoundingClientRect().bottom)) - top;
    }""")
