"""The numbered notebooks as committed: valid nbformat, no outputs, the first code cell tagged ``parameters``."""
import json

import nbformat
import pytest

from fer_utils import paths

NOTEBOOKS = sorted((paths.ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_the_six_stages_are_there():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_notebook_is_valid_clean_and_parameterised(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)  # every cell has its id (nbformat 4.5), the schema holds
    raw = json.loads(path.read_text())
    assert all("id" in c for c in raw["cells"]), f"{path.name}: a cell without an id"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and "parameters" in code[0].metadata.get("tags", []), f"{path.name}: first code cell not tagged"
    assert "FER_PROFILE" in code[0].source
    assert all(not c.outputs and c.execution_count is None for c in code), f"{path.name}: executed outputs committed"
