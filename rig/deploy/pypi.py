"""Fetching one micropython-lib package from PyPI's sdists, for when the mip index is out of reach.

micropython-lib used to publish its packages on PyPI as ``micropython-<name>`` sdists
(``micropython-umqtt.simple`` 1.3.4, ``micropython-umqtt.robust`` 1.0). They cannot go through pip:
some have no setup.py, and their setup.py is not meant to run on the host. So the sdist is found
through the simple JSON API (PEP 691), downloaded, checked against the sha256 PyPI publishes, and
read as a tar archive; nothing in it is ever executed. Only the package's own ``.py`` modules are
kept, which is exactly what mip would put under lib/.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import tarfile
import urllib.parse
import zlib
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidSdistFilename, canonicalize_name, parse_sdist_filename
from packaging.version import InvalidVersion, Version

from rig.deadline import Deadline
from rig.deploy.sources import (
    LATEST,
    PACKAGE_NAME,
    FetchedPackage,
    IntegrityError,
    PackageNotFound,
    SourceFailed,
    check_target_path,
    http_get,
)

DEFAULT_PYPI_URL = "https://pypi.org"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
PYPI_PREFIX = "micropython-"


def pypi_project(mip_name: str) -> str:
    """The PyPI project of a micropython-lib package: ``umqtt.simple`` -> ``micropython-umqtt-simple``
    (PEP 503 normalised, the form the simple API's URLs use)."""
    return canonicalize_name(PYPI_PREFIX + mip_name)


@dataclass(frozen=True)
class Sdist:
    """One sdist file listed by the simple API; ``version`` is as the file name spells it."""

    filename: str
    version: Version
    url: str
    sha256: str
    yanked: bool


def list_sdists(doc: dict[str, object], project: str, page_url: str) -> list[Sdist]:
    """The ``.tar.gz`` sdists of ``project`` in a PEP 691 project page; wheels and others are skipped."""
    files = doc.get("files")
    if not isinstance(files, list):
        raise SourceFailed(page_url, "answer has no 'files' list (is this a PEP 691 simple API?)")
    found: list[Sdist] = []
    for entry in files:
        if not isinstance(entry, dict):
            continue
        filename, url, hashes = entry.get("filename"), entry.get("url"), entry.get("hashes")
        if not (isinstance(filename, str) and isinstance(url, str)) or not filename.endswith(".tar.gz"):
            continue
        try:
            sdist_project, version = parse_sdist_filename(filename)
        except (InvalidSdistFilename, InvalidVersion):
            continue  # a file name pip could not read either
        if sdist_project != project:
            continue
        sha256 = hashes.get("sha256") if isinstance(hashes, dict) else None
        if not isinstance(sha256, str):
            continue  # an unverifiable file is never used
        found.append(
            Sdist(
                filename=filename,
                version=version,
                url=urllib.parse.urljoin(page_url, url),  # PEP 691 allows relative URLs
                sha256=sha256.lower(),
                yanked=bool(entry.get("yanked", False)),  # False, True or the reason string
            )
        )
    return found


def pick_sdist(sdists: list[Sdist], version: str, page_url: str) -> Sdist:
    """The sdist for ``version``: an exact pin may pick a yanked file (PEP 592), "latest" never does,
    and prefers the newest final release to any pre-release (PEP 440 order, through ``packaging``)."""
    if version != LATEST:
        try:
            wanted = Version(version)
        except InvalidVersion as exc:
            raise PackageNotFound(page_url, f"{version!r} is not a version") from exc
        pinned = [s for s in sdists if s.version == wanted]
        if not pinned:
            have = ", ".join(str(v) for v in sorted({s.version for s in sdists})) or "none"
            raise PackageNotFound(page_url, f"no sdist for version {version} (available: {have})")
        return min(pinned, key=lambda s: s.yanked)
    candidates = [s for s in sdists if not s.yanked]
    if not candidates:
        raise PackageNotFound(page_url, "no sdist that is not yanked")
    finals = [s for s in candidates if not s.version.is_prerelease]
    return max(finals or candidates, key=lambda s: s.version)


def fetch_from_pypi(name: str, version: str, pypi_url: str, deadline: Deadline) -> FetchedPackage:
    """Fetch micropython-lib package ``name`` at ``version`` ("latest" or exact) from PyPI's sdists."""
    project = pypi_project(name)
    page_url = f"{pypi_url.rstrip('/')}/simple/{project}/"
    page = http_get(page_url, deadline, accept=SIMPLE_JSON)
    sdist = pick_sdist(list_sdists(_load_page(page, page_url), project, page_url), version, page_url)
    data = http_get(sdist.url, deadline)
    actual = hashlib.sha256(data).hexdigest()
    if actual != sdist.sha256:
        raise IntegrityError(sdist.url, f"sha256 is {actual}, the index says {sdist.sha256}")
    files, deps = unpack_sdist(data, name, sdist.url)
    return FetchedPackage(name=name, version=str(sdist.version), files=files, deps=deps, origin=sdist.url)


def unpack_sdist(data: bytes, name: str, where: str) -> tuple[dict[str, bytes], tuple[tuple[str, str], ...]]:
    """The package's own ``.py`` modules (paths relative to lib/) and its dependencies, from an sdist.

    Kept: regular ``.py`` files whose path is the package's module (``umqtt/simple.py`` for
    ``umqtt.simple``) or below it (``aioble/`` for ``aioble``); if nothing matches, every module file.
    Skipped: setup.py, PKG-INFO, ``*.egg-info/`` and every symlink (robust 1.0 ships ``umqtt/simple.py``
    as a symlink pointing outside the archive).

    Dependencies come from setup.py's ``install_requires`` (read with ``ast``, never executed), from
    ``*.egg-info/requires.txt``, and from the modules' own imports of sibling modules in the same
    namespace that the package does not ship: robust 1.0 declares nothing but does ``from . import
    simple``, which makes it depend on ``umqtt.simple``.
    """
    modules: dict[str, bytes] = {}
    requirements: list[str] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive.getmembers():
                parts = member.name.split("/")
                if not member.isfile() or len(parts) < 2:
                    continue
                rel = "/".join(parts[1:])  # drop the "<name>-<version>/" root of every sdist
                extracted = archive.extractfile(member)
                if extracted is None:
                    continue
                if rel == "setup.py":
                    requirements += _install_requires(extracted.read())
                elif len(parts) == 3 and parts[1].endswith(".egg-info") and parts[2] == "requires.txt":
                    requirements += _requires_txt(extracted.read())
                elif rel.endswith(".py") and not any(p.endswith(".egg-info") for p in parts[1:]):
                    modules[check_target_path(rel, where)] = extracted.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise SourceFailed(where, f"not a readable .tar.gz sdist: {exc}") from exc
    module_path = name.replace(".", "/")
    own = {p: b for p, b in modules.items() if p == f"{module_path}.py" or p.startswith(f"{module_path}/")}
    files = own or modules
    if not files:
        raise SourceFailed(where, f"the sdist contains no .py module for {name}")
    deps: dict[str, str] = {}
    for requirement in requirements:
        dep = _mip_requirement(requirement)
        if dep and dep[0] != name:
            deps.setdefault(*dep)
    for sibling in _sibling_imports(name, files):
        deps.setdefault(sibling, LATEST)
    return files, tuple(deps.items())


def _load_page(data: bytes, url: str) -> dict[str, object]:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceFailed(url, f"answer is not PEP 691 JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise SourceFailed(url, "answer is not a PEP 691 project page")
    return doc


def _install_requires(setup_py: bytes) -> list[str]:
    try:
        tree = ast.parse(setup_py)
    except (SyntaxError, ValueError):
        return []  # a setup.py the host cannot parse declares nothing the rig can use
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "install_requires":
                    try:
                        value = ast.literal_eval(keyword.value)
                    except ValueError:
                        return []  # computed at run time; never executed here
                    if isinstance(value, (list, tuple)):
                        return [v for v in value if isinstance(v, str)]
    return []


def _requires_txt(text: bytes) -> list[str]:
    requirements: list[str] = []
    for line in text.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line.startswith("["):
            break  # extras and environment sections follow; the base requirements come first
        if line and not line.startswith("#"):
            requirements.append(line)
    return requirements


def _mip_requirement(requirement: str) -> tuple[str, str] | None:
    """``micropython-umqtt.simple>=1.0`` -> ``("umqtt.simple", "latest")``; ``==1.3`` pins.

    Requirements without the ``micropython-`` prefix are CPython packages listed to please pip; the
    board cannot use them. Environment markers describe CPython, not the board, so they are ignored.
    """
    try:
        parsed = Requirement(requirement)
    except InvalidRequirement:
        return None  # what pip could not read either declares nothing the rig can use
    if not parsed.name.lower().startswith(PYPI_PREFIX):
        return None
    name = parsed.name[len(PYPI_PREFIX) :]
    if not PACKAGE_NAME.fullmatch(name):
        return None
    specs = list(parsed.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return name, specs[0].version
    return name, LATEST


def _sibling_imports(name: str, files: dict[str, bytes]) -> list[str]:
    """Modules ``<namespace>.<x>`` that the package's modules import but the package does not ship."""
    if "." not in name:
        return []
    namespace = name.split(".")[0]
    shipped = {".".join(p[: -len(".py")].split("/")[:2]) for p in files}
    found: list[str] = []
    for path, source in files.items():
        package = path.split("/")[:-1]
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            continue  # MicroPython-only syntax; the declared deps still apply
        for node in ast.walk(tree):
            targets: list[list[str]] = []
            if isinstance(node, ast.Import):
                targets = [alias.name.split(".") for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                module = base + (node.module.split(".") if node.module else [])
                targets = [module]
                # "from umqtt import simple" names a module, unless umqtt/__init__.py could define it.
                if "/".join([*module, "__init__.py"]) not in files:
                    targets += [[*module, alias.name] for alias in node.names]
            for target in targets:
                if len(target) >= 2 and target[0] == namespace:
                    dep = ".".join(target[:2])
                    if dep != name and dep not in shipped and dep not in found:
                        found.append(dep)
    return found
