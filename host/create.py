"""`steppe create [DIR]`: a new project from one of the templates in host/templates/, with its
dependencies installed (npm, and a project .venv for Python steps) unless --no-install."""

from __future__ import annotations

import argparse
import shlex
import shutil
import site
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# the JS test helpers, shipped inside this package (steppe.testing.NPM_PACKAGE; not imported: `steppe` starts
# faster without the test helpers and httpx)
JS_TESTING = Path(__file__).resolve().parent / "testing" / "npm"

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    about: str
    try_it: str
    test: str


_HELLO = "curl -X POST localhost:3000/hello -H 'content-type: application/json' -d '{\"name\": \"Ada\"}'"
CHOICES = {t.name: t for t in [
    Template("typescript", "TypeScript", "`POST /hello` (a TypeScript API step with a zod schema) emits `hello.said`;"
             " a TypeScript event step counts greetings in state.", _HELLO, "npm test"),
    Template("javascript", "JavaScript", "`POST /hello` (a JavaScript API step with a zod schema) emits `hello.said`;"
             " a JavaScript event step counts greetings in state.", _HELLO, "npm test"),
    Template("python", "Python", "`POST /hello` (a Python API step) emits `hello.said`; a Python event step counts"
             " greetings in state.", _HELLO, ".venv/bin/pytest tests"),
    Template("ruby", "Ruby", "`POST /hello` (a Ruby API step) emits `hello.said`; a Ruby event step counts greetings"
             " in state.", _HELLO, ".venv/bin/pytest tests && ruby -I \"$(.venv/bin/python -c 'import steppe.testing"
             " as t; print(t.RUBY_LIB)')\" tests/remember_test.rb"),
    Template("multilang", "TypeScript, Python, Ruby and JavaScript",
             "`POST /orders` (TypeScript) emits `order.placed`; a Python step prices it and emits `order.priced`;"
             " a Ruby step ships it and shows it in the `orders` stream; a JavaScript cron step reports daily.",
             "curl -X POST localhost:3000/orders -H 'content-type: application/json'"
             " -d '{\"item\": \"tea\", \"qty\": 2}'", "npm test"),
]}


class CreateError(ValueError):
    """A usage problem: the folder is not empty, the template is unknown (exit 2)."""


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def create_project(target: Path, template: str) -> list[str]:
    """Write the template into `target` (new or empty); returns the files written, relative."""
    if template not in CHOICES:
        raise CreateError(f"unknown template {template!r}; choose one of {', '.join(CHOICES)}")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise CreateError(f"{target} exists and is not an empty folder")
    t = CHOICES[template]
    source = TEMPLATES / template
    has_npm = (source / "package.json").exists()
    values = {"name": target.resolve().name, "template": template, "title": t.title, "about": t.about,
              "try": t.try_it, "test": t.test,
              "install": "npm install        # once (create did it unless --no-install)\n" if has_npm else "",
              "steppe_testing": f"file:{JS_TESTING}"}
    target.mkdir(parents=True, exist_ok=True)
    written = []
    files = [(p, p.relative_to(source).as_posix()) for p in sorted(source.rglob("*")) if p.is_file()]
    files += [(TEMPLATES / "_common" / "gitignore", ".gitignore"), (TEMPLATES / "_common" / "env.example",
                                                                    ".env.example"),
              (TEMPLATES / "_common" / "README.md", "README.md")]
    for path, rel in files:
        if "__pycache__" in rel:
            continue
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(_fill(path.read_text(), values))
        written.append(rel)
    return written


def _npm() -> list[str]:
    found = shutil.which("npm")
    # nodejs-bin's npm; runpy warns that the nodejs package imported nodejs.npm first (harmless, but it reads
    # like an error to someone creating their first project)
    return [found] if found else [sys.executable, "-W", "ignore:'nodejs.npm' found in sys.modules:RuntimeWarning",
                                  "-m", "nodejs.npm"]


def install_dependencies(target: Path, out: Any = sys.stdout) -> None:
    """npm install when there is a package.json; a .venv with requirements.txt installed when there is
    one. The .venv also sees this Steppe installation (a .pth file), so `pytest` there can import
    steppe.testing."""
    target = target.resolve()  # the commands below run inside it
    if (target / "package.json").exists():
        print("installing npm packages…", file=out, flush=True)
        subprocess.run([*_npm(), "install", "--no-audit", "--no-fund"], cwd=target, check=True)
    if (target / "requirements.txt").exists():
        print("creating .venv and installing requirements.txt…", file=out, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(target / ".venv")], check=True)
        venv_python = target / ".venv" / "bin" / "python"
        subprocess.run([str(venv_python), "-m", "pip", "install", "-q", "-r", "requirements.txt"], cwd=target,
                       check=True)
        purelib = subprocess.run([str(venv_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        own = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
        # addsitedir (not a bare path) so the .pth files there run too: an editable Steppe is found by one
        lines = [f"import site; site.addsitedir({d!r})" for d in dict.fromkeys(own)]
        Path(purelib, "steppe-host.pth").write_text("\n".join(lines) + "\n")


def _ask(args: argparse.Namespace) -> tuple[str, str]:
    import questionary

    directory = args.directory or questionary.text("Project folder:", default="my-steppe-app").unsafe_ask()
    template = questionary.select("Template:", choices=[questionary.Choice(f"{t.name} — {t.title}", value=t.name)
                                                       for t in CHOICES.values()],
                                  default=args.template).unsafe_ask()
    return str(directory), str(template)


def cmd_create(args: argparse.Namespace) -> int:
    if args.interactive:
        if not sys.stdin.isatty():  # questionary would fail on its first read with a long EOFError
            print("error: steppe create -i asks in a terminal, and there is none here; give the folder and "
                  "--template instead (steppe create my-app --template python)", file=sys.stderr)
            return 2
        directory, template = _ask(args)
    else:
        directory, template = args.directory or ".", args.template or "typescript"
    target = Path(directory)
    files = create_project(target, template)
    print(f"created {template} project in {target} ({len(files)} files)")
    if args.no_install:
        print("dependencies not installed (--no-install)")
    else:
        try:
            install_dependencies(target)
        except (subprocess.CalledProcessError, OSError) as e:
            print(f"error: installing dependencies failed ({e}); the project is written, run the install again"
                  " in it", file=sys.stderr)
            return 1
        generated = subprocess.run([sys.executable, "-m", "steppe.cli", "generate", "types", "--root", str(target)],
                                   capture_output=True, text=True)
        if generated.returncode == 0:
            print("wrote types.d.ts and steppe_types.py (`steppe dev` keeps them up to date)")
        else:
            print(f"warning: the types were not generated: {' '.join(generated.stderr.split())}", file=sys.stderr)
    # quoted: the line is meant to be pasted into a shell, and a folder name may hold spaces
    print(f"next: cd {shlex.quote(str(target))} && steppe dev   (tests: {CHOICES[template].test})")
    return 0


def add_create_command(sub: Any) -> None:
    p = sub.add_parser("create", help="make a new project from a template",
                       description="Make a new project from a template: steps, tests, steppe.toml, README.")
    p.add_argument("directory", nargs="?", default=None, help="folder to create (new or empty; default: here)")
    p.add_argument("-t", "--template", choices=list(CHOICES), default=None, help="template (default typescript)")
    p.add_argument("-i", "--interactive", action="store_true", help="ask for the folder and template")
    p.add_argument("--no-install", action="store_true", help="do not run npm install / create a .venv")
    p.set_defaults(func=cmd_create)
