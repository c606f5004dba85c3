"""The dependency direction of DESIGN.md, read from the import statements of the source: nothing under vlm/
imports nav/ or eqa/; the builtin VLM's inference code imports neither the simulator nor its training code;
the agent core imports nothing from the simulator."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILTIN_RUNTIME = ["vlm/builtin_model/model.py", "vlm/builtin_model/tensors.py", "vlm/builtin_model/vocab.py",
                   "vlm/builtin_model/runtime.py", "vlm/backends/builtin.py"]
AGENT_CORE = ["eqa/agent.py", "eqa/method.py", "eqa/records.py", "eqa/stopping.py", "eqa/semantic.py",
              "eqa/episode.py", "eqa/config.py"]


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth of the file (function-level imports included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def offenders(files, forbidden: tuple[str, ...]) -> dict:
    found = {}
    for f in files:
        bad = {m for m in imported_modules(ROOT / f) if m.split(".")[0] in forbidden or m.startswith(forbidden)}
        if bad:
            found[str(f)] = sorted(bad)
    return found


def test_vlm_imports_nothing_from_nav_or_eqa():
    files = [p.relative_to(ROOT) for p in (ROOT / "vlm").rglob("*.py")]
    assert len(files) > 20
    assert offenders(files, ("nav", "eqa")) == {}


def test_builtin_inference_imports_neither_the_simulator_nor_the_training_code():
    assert offenders(BUILTIN_RUNTIME, ("sim", "vlm.builtin_model.training")) == {}
    assert offenders([p.relative_to(ROOT) for p in (ROOT / "vlm" / "builtin_model" / "training").glob("*.py")],
                     ("nav", "eqa")) == {}


def test_the_agent_core_imports_nothing_from_the_simulator():
    assert offenders(AGENT_CORE, ("sim",)) == {}
    assert offenders([p.relative_to(ROOT) for p in (ROOT / "mapping").rglob("*.py")]
                     + [p.relative_to(ROOT) for p in (ROOT / "nav").rglob("*.py")], ("sim", "eqa")) == {}


def test_the_forbidden_imports_would_be_found():
    """The check sees function-level imports too (the way heavy dependencies are imported here)."""
    assert "sim.questions" in imported_modules(ROOT / "vlm" / "builtin_model" / "training" / "data.py")
    assert offenders(["eqa/sim_driver.py"], ("sim",))
