"""pyproject.toml and environment.yml describe the same environment; only `clcourse` is a package."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def names(requirements) -> set:
    return {re.split(r"[<>=!~ \[]", r.strip(), maxsplit=1)[0].lower() for r in requirements}


def env_dependencies() -> str:
    return (ROOT / "environment.yml").read_text().split("dependencies:", 1)[1]


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = names(project["dependencies"]) | names(project["optional-dependencies"]["dev"])
    entries = re.findall(r"^\s*-\s+([A-Za-z][\w.-]*[^\n]*)$", env_dependencies(),
                         flags=re.M)
    listed = names(e for e in entries if not e.endswith(":")) - {"python", "pip"}
    assert listed == wanted


def test_only_the_clcourse_package_is_installed():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert cfg["tool"]["setuptools"]["packages"]["find"]["include"] == ["clcourse*"]
    assert cfg["project"]["scripts"]["clcourse"] == "clcourse.cli:main"
    for folder in ("notebooks", "exercises", "solutions", "benchmarks"):
        assert not (ROOT / folder / "__init__.py").exists()
