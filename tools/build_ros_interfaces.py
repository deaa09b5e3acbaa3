"""Build the ROS 2 interface packages of this repository with CMake into a prefix (`make install`).

Builds `grounding_agent_interfaces` and, where no installed package provides it, the vision_msgs
of third_party/vision_msgs, into `--prefix` (the project's venv). Installed there, the messages
need nothing more: the generated Python packages land in the venv's site-packages and their
libraries in `<venv>/lib`, which the ROS wheels' start-up hook puts on LD_LIBRARY_PATH of every
Python process of the venv (tests, the CLI, node subprocesses). A ROS 2 user builds the same
packages with `colcon build` instead (docs/ros_interface.md).

A package is rebuilt only when its sources changed since the last build into that prefix.

    python tools/build_ros_interfaces.py --prefix .venv [--build-dir build/ros_interfaces]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import subprocess
import sys
import sysconfig
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CMAKE_FIX = ROOT / 'tools' / 'cmake' / 'drop_missing_include_dirs.cmake'


@dataclass(frozen=True)
class InterfacePackage:
    name: str
    source: Path
    #: build only when `import <name>` finds no package outside the prefix (a ROS install)
    only_if_missing: bool


PACKAGES = (
    InterfacePackage('vision_msgs', ROOT / 'third_party' / 'vision_msgs', only_if_missing=True),
    InterfacePackage(
        'grounding_agent_interfaces', ROOT / 'grounding_agent_interfaces', only_if_missing=False
    ),
)


def source_digest(source: Path) -> str:
    """SHA-256 over every file of a package (names and contents), in a stable order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in source.rglob('*') if p.is_file()):
        digest.update(path.relative_to(source).as_posix().encode() + b'\0')
        digest.update(path.read_bytes() + b'\0')
    return digest.hexdigest()


def installed_elsewhere(name: str, site_packages: Path) -> Path | None:
    """Where `name` is importable from, when that is not the prefix being built into."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    origin = Path(spec.origin).resolve()
    return None if origin.is_relative_to(site_packages.resolve()) else origin


def _stamp(build_dir: Path, package: InterfacePackage) -> Path:
    return build_dir / f'{package.name}.built'


def _prefixed(env: dict[str, str], name: str, prefix: Path) -> str:
    parts = [str(prefix), *(p for p in env.get(name, '').split(os.pathsep) if p)]
    return os.pathsep.join(dict.fromkeys(parts))


def build(
    package: InterfacePackage, *, prefix: Path, build_dir: Path, jobs: int, python: str
) -> None:
    """Configure, build and install one package with CMake; its log goes to build_dir."""
    env = dict(os.environ)
    env['AMENT_PREFIX_PATH'] = _prefixed(env, 'AMENT_PREFIX_PATH', prefix)
    env['CMAKE_PREFIX_PATH'] = _prefixed(env, 'CMAKE_PREFIX_PATH', prefix)
    work = build_dir / package.name
    log_path = build_dir / f'{package.name}.log'
    steps = [
        [
            'cmake',
            '-S',
            str(package.source),
            '-B',
            str(work),
            f'-DCMAKE_INSTALL_PREFIX={prefix}',
            f'-DPython3_EXECUTABLE={python}',
            '-DBUILD_TESTING=OFF',
            f'-DCMAKE_PROJECT_INCLUDE={CMAKE_FIX}',
        ],
        ['cmake', '--build', str(work), f'-j{jobs}'],
        ['cmake', '--install', str(work)],
    ]
    with log_path.open('w') as log:
        for step in steps:
            log.write('$ ' + ' '.join(step) + '\n')
            log.flush()
            outcome = subprocess.run(step, stdout=log, stderr=subprocess.STDOUT, env=env)
            if outcome.returncode != 0:
                tail = log_path.read_text().splitlines()[-30:]
                raise SystemExit(
                    f'building {package.name} failed ({" ".join(step[:2])}); '
                    f'last lines of {log_path}:\n' + '\n'.join(tail)
                )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--prefix', type=Path, required=True, help='install prefix (the venv)')
    parser.add_argument('--build-dir', type=Path, default=ROOT / 'build' / 'ros_interfaces')
    parser.add_argument('--jobs', type=int, default=2)
    options = parser.parse_args(argv)
    prefix = options.prefix.resolve()
    build_dir = options.build_dir.resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    site_packages = Path(sysconfig.get_path('purelib', vars={'base': str(prefix)}))
    for package in PACKAGES:
        if package.only_if_missing:
            found = installed_elsewhere(package.name, site_packages)
            if found is not None:
                print(f'== {package.name}: provided by {found.parent}, not built')
                continue
        digest = source_digest(package.source)
        stamp = _stamp(build_dir, package)
        installed = (site_packages / package.name).is_dir()
        if installed and stamp.is_file() and stamp.read_text().strip() == f'{digest} {prefix}':
            print(f'== {package.name}: up to date')
            continue
        print(f'== {package.name}: building with CMake (log: {build_dir / package.name}.log)')
        start = time.monotonic()
        build(
            package, prefix=prefix, build_dir=build_dir, jobs=options.jobs, python=sys.executable
        )
        stamp.write_text(f'{digest} {prefix}\n')
        print(f'   built and installed in {time.monotonic() - start:.0f} s')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
