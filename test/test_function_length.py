"""No function in retf_ros is longer than MAX_FUNCTION_LINES: a longer one mixes concerns and is
split into named steps. Length = lines from ``def`` to the function's last line (docstring,
comments and blank lines included, decorators not)."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "retf_ros"
MAX_FUNCTION_LINES = 80


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    """(qualified name, lines) of every function or method of ``source`` longer than ``limit``."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef) and child.end_lineno - child.lineno + 1 > limit:
                    found.append((name, child.end_lineno - child.lineno + 1))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def test_the_measure_finds_long_methods_and_nested_functions_and_passes_short_ones():
    body = "".join(f"        x{i} = {i}\n" for i in range(79))
    source = (f"class A:\n    def long(self):\n{body}        return 0\n"
              f"    def short(self):\n        return 1\n"
              f"def outer():\n    def inner():\n{body}        return 0\n"
              f"    return inner\n")
    assert long_functions(source, limit=80) == [("A.long", 81), ("outer", 83), ("outer.inner", 81)]
    assert long_functions(source, limit=81) == [("outer", 83)]


def test_no_function_in_the_package_is_longer_than_the_limit():
    offenders = [f"{path.relative_to(PACKAGE)}: {name} ({lines} lines)"
                 for path in sorted(PACKAGE.rglob("*.py"))
                 for name, lines in long_functions(path.read_text())]
    assert offenders == []
