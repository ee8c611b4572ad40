"""The viewer's models work without Qt (napari-style separation): import them with PySide6
blocked, and run a batch through the analysis loop with a fake predictor."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from viewer_fakes import skull_image, write_png

QT_FREE = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "app" / "valvereader" / "gui" / "models").glob("*.py")
                 if p.stem != "__init__")


def test_models_import_and_analyse_with_qt_blocked(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    for i in range(2):
        write_png(folder / f"s{i}.png", skull_image(seed=i))
    (tmp_path / "broken.png").write_bytes(b"garbage")
    code = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("PySide6", "shiboken6"):
                    raise ImportError("Qt is blocked in this test")
        sys.meta_path.insert(0, Block())
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from pathlib import Path
        {"; ".join(f"import valvereader.gui.models.{m}" for m in QT_FREE)}
        from valvereader.gui.models.analysis import AnalysisQueue, ModelStatus, StudyResult, analyse_batch
        from valvereader.gui.models.services import RadiographCache, expand_paths
        from viewer_fakes import FakePredictor

        studies, folder = expand_paths([Path({str(folder)!r}), Path({str(tmp_path / "broken.png")!r})])
        events = []
        class Context:
            cancelled = False
            def check(self): pass
            def progress(self, done, total, what=""): pass
            def emit(self, value): events.append(value)
        queue = AnalysisQueue(list(range(len(studies))))
        analyse_batch(Context(), 1, [s.path for s in studies], queue, RadiographCache(),
                      lambda: ModelStatus(FakePredictor(), "fake"))
        results = [e for e in events if isinstance(e, StudyResult)]
        print(len(results), sum(r.error is not None for r in results), sum(r.prediction is not None for r in results))
        assert "PySide6" not in sys.modules
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "1", "2"]  # the broken file is an error, the batch goes on
